"""The event contract: schemas checked in match the models; every binding round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import jsonschema
import pydantic
import pytest

from events import bindings, envelope, schemas, types
from events.files import FileArrived, FileRejected, RejectReason
from events.products import ProductPublished
from events.registry import DATA_MODELS, UnknownEventType, model_for

ARRIVED = FileArrived(bucket="auxip-inbox", key="S1A_AUX_CAL_x.SAFE/manifest.safe", size=3282,
                      etag='"abc"', arrived_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


@pytest.mark.parametrize("event_type", sorted(DATA_MODELS))
def test_checked_in_schema_matches_model(event_type: str) -> None:
    path = schemas.path_for(event_type)
    assert path.exists(), f"run `make schemas`: {path} is missing"
    assert path.read_text(encoding="utf-8") == schemas.render(event_type), (
        f"{path.name} drifted from its model: run `make schemas` and review the diff")


def test_no_stray_schema_files() -> None:
    on_disk = {p.name for p in schemas.FOLDER.glob("*.json")}
    assert on_disk == {schemas.path_for(t).name for t in DATA_MODELS}


@pytest.mark.parametrize("event_type", sorted(DATA_MODELS))
def test_type_names_are_versioned(event_type: str) -> None:
    assert event_type.startswith(types.PREFIX + ".")
    assert event_type.rsplit(".", 1)[-1].startswith("v")


def test_built_event_validates_against_its_schema() -> None:
    event = envelope.build(types.FILE_ARRIVED, ARRIVED, source="/test", subject=ARRIVED.key)
    schema = json.loads(schemas.path_for(types.FILE_ARRIVED).read_text())
    jsonschema.validate(event.data, schema)
    assert event["dataschema"] == schema["$id"]


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_http_round_trip(mode: str) -> None:
    event = envelope.build(types.FILE_ARRIVED, ARRIVED, source="/test", subject=ARRIVED.key,
                           extensions={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    encode = bindings.to_http_binary if mode == "binary" else bindings.to_http_structured
    headers, body = encode(event)
    if mode == "binary":
        assert headers["ce-type"] == types.FILE_ARRIVED
    else:
        assert headers["content-type"].startswith("application/cloudevents+json")
    back = bindings.from_http_request(headers, body)
    assert back["id"] == event["id"] and back["subject"] == ARRIVED.key
    assert back["traceparent"] == event["traceparent"]
    assert envelope.data_of(back, FileArrived) == ARRIVED


def test_kafka_round_trip_keeps_key_and_data() -> None:
    event = envelope.build(types.FILE_ARRIVED, ARRIVED, source="/test")
    message = bindings.to_kafka_message(event, key="auxip-inbox/x")
    assert message.key == "auxip-inbox/x"
    assert message.headers["ce_type"] == types.FILE_ARRIVED.encode()
    back = bindings.from_kafka_message(message)
    assert envelope.data_of(back) == ARRIVED


def test_stored_json_round_trip() -> None:
    published = ProductPublished(
        product_id=uuid4(), name="S1A_OPER_AUX_RESORB_OPOD_x.EOF", product_type="AUX_RESORB",
        platform_serial="A", content_length=10,
        content_start=datetime(2017, 12, 13, 10, 27, 37, tzinfo=UTC),
        content_end=datetime(2017, 12, 13, 13, 45, 7, tzinfo=UTC),
        origin_date=datetime(2026, 1, 1, tzinfo=UTC), publication_date=datetime.now(UTC),
        eviction_date=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    event = envelope.build(types.PRODUCT_PUBLISHED, published, source="/test")
    assert envelope.data_of(bindings.from_json(bindings.to_json(event))) == published


def test_wrong_model_for_type_is_refused() -> None:
    with pytest.raises(TypeError):
        envelope.build(types.PRODUCT_PUBLISHED, ARRIVED, source="/test")


def test_unknown_type_is_refused() -> None:
    with pytest.raises(UnknownEventType):
        model_for("org.auxip.nothing.v1")


def test_data_with_unknown_fields_or_bad_values_is_refused() -> None:
    event = envelope.build(types.FILE_ARRIVED, ARRIVED, source="/test")
    event.data["surprise"] = 1
    with pytest.raises(pydantic.ValidationError):
        envelope.data_of(event)
    event = envelope.build(types.FILE_ARRIVED, ARRIVED, source="/test")
    event.data["size"] = -1
    with pytest.raises(pydantic.ValidationError):
        envelope.data_of(event)


def test_reject_reasons_are_stable_codes() -> None:
    rejected = FileRejected(name="x", bucket="b", key="x", quarantine_bucket="q",
                            quarantine_key="id/x", reason=RejectReason.VIRUS_FOUND,
                            detail="Eicar", rejected_at=datetime.now(UTC))
    assert rejected.model_dump(mode="json")["reason"] == "virus_found"
