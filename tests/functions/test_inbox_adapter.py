"""inbox-adapter: the three notification shapes in, one journalled file.arrived out."""

from __future__ import annotations

import json

import psycopg
import pytest
from cloudevents.http import CloudEvent

from devstack import inbox_kafka
from devstack.layout import Layout
from devstack.router import kafka_source, wire
from devstack.router.kafka_source import Record
from devstack.router.manifests import load
from devstack.router.settings import REPOSITORY_ROOT
from devstack.router.topology import Defaults
from events import bindings, types
from shared.adapters.settings import Settings
from tests.functions.conftest import client


def _records(*keys: str, event: str = "ObjectCreated:Put") -> dict:
    return {"Records": [
        {"eventVersion": "2.2", "eventSource": "ceph:s3", "eventName": event,
         "eventTime": "2026-11-24T10:00:00.000Z",
         "s3": {"bucket": {"name": "auxip-inbox"},
                "object": {"key": key, "size": 100, "eTag": f"etag-{key}", "sequencer": "0A"}}}
        for key in keys]}


def _journal(settings: Settings) -> list[tuple[str, dict]]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute("SELECT type, data FROM event_journal ORDER BY data->>'key'").fetchall()


@pytest.mark.usefixtures("function_env")
def test_rgw_webhook_gives_one_event_per_object(settings: Settings) -> None:
    answer = client("inbox_adapter", "http").post(
        "/", data=json.dumps(_records("a.EOF", "S1A_X.SAFE/manifest.safe", "dir/")),
        content_type="application/json")
    assert answer.status_code == 200, answer.data
    journal = _journal(settings)
    assert [data["key"] for _, data in journal] == ["S1A_X.SAFE/manifest.safe", "a.EOF"]
    assert {t for t, _ in journal} == {types.FILE_ARRIVED}


@pytest.mark.usefixtures("function_env")
def test_duplicate_notification_is_journalled_once(settings: Settings) -> None:
    adapter = client("inbox_adapter", "http")
    body = json.dumps(_records("a.EOF"))
    for _ in range(2):
        assert adapter.post("/", data=body, content_type="application/json").status_code == 200
    assert len(_journal(settings)) == 1


@pytest.mark.usefixtures("function_env")
def test_minio_key_escaping_is_decoded(settings: Settings) -> None:
    body = _records("folder%2FS1A+file%C3%A9.EOF", event="s3:ObjectCreated:Put")
    answer = client("inbox_adapter", "http").post("/", data=json.dumps(body),
                                                  content_type="application/json")
    assert answer.status_code == 200
    assert [data["key"] for _, data in _journal(settings)] == ["folder/S1A fileé.EOF"]


@pytest.mark.usefixtures("function_env")
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_kafka_source_event_wrapping_minio_record(settings: Settings, mode: str) -> None:
    event = CloudEvent({"type": types.KAFKA_RECORD,
                        "source": "/apis/v1/namespaces/auxip/kafkasources/minio#inbox",
                        "subject": "partition:0#42", "datacontenttype": "application/json"},
                       _records("k.EOF", event="s3:ObjectCreated:Put"))
    encode = bindings.to_http_binary if mode == "binary" else bindings.to_http_structured
    headers, body = encode(event)
    answer = client("inbox_adapter", "http").post("/", data=body, headers=headers)
    assert answer.status_code == 200, answer.data
    assert [data["key"] for _, data in _journal(settings)] == ["k.EOF"]


@pytest.mark.usefixtures("function_env")
@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"Records": [{"eventName": "ObjectCreated:Put"}]}'])
def test_bad_notifications_get_400_and_nothing_journalled(settings: Settings, body: bytes) -> None:
    answer = client("inbox_adapter", "http").post("/", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert json.loads(answer.data)["code"] == "bad_notification"
    assert _journal(settings) == []


@pytest.mark.usefixtures("function_env")
def test_other_cloudevent_types_are_refused(settings: Settings) -> None:
    event = CloudEvent({"type": "com.example.other", "source": "/x"}, {"a": 1})
    headers, body = bindings.to_http_binary(event)
    answer = client("inbox_adapter", "http").post("/", data=body, headers=headers)
    assert answer.status_code == 400


@pytest.mark.usefixtures("function_env")
def test_what_the_kafka_source_sends_for_minios_record_is_one_event(settings: Settings) -> None:
    """Byte for byte what the router's KafkaSource (as Knative's) POSTs for a record of
    MinIO's Kafka target: binary mode, no content type, the record's value as data. The
    same notification at two offsets (MinIO retried its write) is one file.arrived."""
    source = load(REPOSITORY_ROOT / "knative" / "base", Layout(8080),
                  Defaults(300.0, 1.0)).kafka_sources[0]
    key, value = inbox_kafka.minio_record("auxip-inbox", "S1A_ö x.EOF", size=9, etag="e1")
    adapter = client("inbox_adapter", "http")
    for offset in (7, 8):
        event = kafka_source.event_of(source, Record(source.topics[0], 1, offset,
                                                     1_765_000_000_000, key.encode(), value))
        headers, body = wire.binary(event)
        assert "content-type" not in dict(headers)
        answer = adapter.post("/", data=body,
                              headers={name: raw.decode() for name, raw in headers})
        assert answer.status_code == 200, answer.data
    assert [data["key"] for _, data in _journal(settings)] == ["S1A_ö x.EOF"]
