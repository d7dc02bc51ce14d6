"""The CloudEvents HTTP binding as the router reads and writes it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cloudevents.http import from_http

from devstack.router import wire
from events.bindings import to_http_binary, to_http_structured
from events.envelope import build, data_of
from events.files import FileArrived
from events.types import FILE_ARRIVED

BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


def test_binary_mode_keeps_every_attribute_and_the_exact_bytes():
    event = wire.parse(BINARY | {"ce-subject": "S1A", "ce-traceparent": "00-ab-cd-01", "content-type": "text/csv"},
                       b"a,b\n1,2\n")
    assert dict(event.attributes) == {"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
                                      "subject": "S1A", "traceparent": "00-ab-cd-01", "datacontenttype": "text/csv"}
    headers, body = wire.binary(event)
    assert dict(headers)["content-type"] == b"text/csv" and dict(headers)["ce-traceparent"] == b"00-ab-cd-01"
    assert body == b"a,b\n1,2\n"
    assert wire.parse(BINARY, b"").data is None


def test_structured_mode_becomes_binary_mode():
    document = {"specversion": "1.0", "id": "2", "source": "/s", "type": "t", "count": 3, "flag": False,
                "nothing": None, "data": {"k": "Δ"}}
    event = wire.parse({"content-type": "application/cloudevents+json"}, json.dumps(document).encode())
    assert event.attributes["count"] == "3" and event.attributes["flag"] == "false"
    assert "nothing" not in event.attributes
    assert event.attributes["datacontenttype"] == "application/json"  # implied by the JSON format
    assert json.loads(event.data) == {"k": "Δ"}
    text = wire.parse({"content-type": "application/cloudevents+json"}, json.dumps(
        document | {"datacontenttype": "text/plain", "data": "plain text"}).encode())
    assert text.data == b"plain text"
    raw = wire.parse({"content-type": "application/cloudevents+json"}, json.dumps(
        {k: v for k, v in document.items() if k != "data"} | {"data_base64": base64.b64encode(b"\x00\xff").decode()}
    ).encode())
    assert raw.data == b"\x00\xff"
    assert wire.structured(raw)["data_base64"] == "AP8="


def test_header_values_that_cannot_travel_as_is_are_percent_encoded():
    event = wire.Event({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": "Δt 100%"}, None)
    headers = dict(wire.binary(event)[0])
    assert headers["ce-subject"] == b"%CE%94t%20100%25"
    plain = wire.Event({**event.attributes, "subject": 'a "quoted" 100% value'}, None)
    assert dict(wire.binary(plain)[0])["ce-subject"] == b'a "quoted" 100% value'  # printable: verbatim


def test_utf8_header_bytes_are_read_as_text():
    raw = "Δ".encode("utf-8").decode("latin-1")  # what http.server hands over
    assert wire.parse(BINARY | {"ce-subject": raw}, b"").subject == "Δ"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, b"", "not a CloudEvent"),
        ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
        (BINARY | {"ce-specversion": "0.3"}, b"", "specversion '0.3'"),
        ({k: v for k, v in BINARY.items() if k != "ce-source"}, b"", "missing required attribute source"),
        (BINARY | {"ce-type": ""}, b"", "missing required attribute type"),
        (BINARY | {"ce-time": "2024-13-01T00:00:00Z"}, b"", "RFC 3339"),
        (BINARY | {"ce-time": "2024-01-01"}, b"", "RFC 3339"),
        (BINARY | {"ce-a.b": "x"}, b"", "lower-case letters and digits"),
        ({"content-type": "application/cloudevents+json"}, b"\xff", "not JSON"),
        ({"content-type": "application/cloudevents+json"}, b'"x"', "JSON object"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": "1", "source": "/s",'
                                                            b' "type": "t", "data_base64": "**"}', "not valid base64"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": "1", "source": "/s",'
                                                            b' "type": "t", "x": 1.5}', "string, an integer"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": "1", "source": "/s",'
                                                            b' "type": "t", "Bad": "x"}', "lower-case"),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", "batched"),
    ],
)
def test_what_is_not_a_valid_cloudevent(headers, body, reason):
    with pytest.raises(wire.WireError) as raised:
        wire.parse(headers, body)
    assert reason in str(raised.value)


@pytest.mark.parametrize("time", ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456789+02:00",
                                  "2024-01-01t00:00:00z", "2024-02-29T23:59:59-05:30"])
def test_rfc3339_times(time):
    assert wire.parse(BINARY | {"ce-time": time}, b"").attributes["time"] == time


def test_events_of_the_contract_survive_the_router_unchanged():
    # An auxip event as functions emit it (events.bindings), through the router's wire
    # format, read back by the SDK as a function would.
    sample = FileArrived(bucket="auxip-inbox", key="S1A_AUX_CAL.SAFE/manifest.safe", size=1234,
                         arrived_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    event = build(FILE_ARRIVED, sample, source="/auxip/inbox-adapter", subject="S1A_AUX_CAL.SAFE",
                  extensions={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    for headers, body in (to_http_binary(event), to_http_structured(event)):
        routed = wire.parse({k.lower(): v for k, v in headers.items()}, body)
        out_headers, out_body = wire.binary(routed)
        received = from_http({k: v.decode() for k, v in out_headers}, out_body)
        assert received.get_attributes() == event.get_attributes()
        assert received.data == event.data
        assert data_of(received, FileArrived) == sample
