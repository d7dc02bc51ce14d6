"""CloudEvents on the wire: HTTP binary and structured mode, and the Kafka binding.

Thin wrappers over the cloudevents 1.12 SDK (the line functions-framework 3.10 pins), so
callers never depend on its module layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cloudevents import kafka
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http


def to_http_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_binary(event)
    return {name: _header_value(value) for name, value in headers.items()}, _bytes(body)


def to_http_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(event)
    return dict(headers), _bytes(body)


def from_http_request(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Either HTTP mode; raises cloudevents' errors on a body that is no CloudEvent."""
    return from_http(dict(headers), body)


def to_kafka_message(event: CloudEvent, key: str | None = None) -> kafka.KafkaMessage:
    if key is not None:
        event["partitionkey"] = key
    return kafka.to_binary(event, key_mapper=_partition_key)


def from_kafka_message(message: kafka.KafkaMessage) -> CloudEvent:
    return kafka.from_binary(message, event_type=CloudEvent, data_unmarshaller=_json_or_raw)


def to_json(event: CloudEvent) -> dict:
    """The structured-mode JSON document, e.g. for storing a whole event in a table."""
    return json.loads(to_structured(event)[1])


def from_json(document: Mapping) -> CloudEvent:
    return from_http({"content-type": "application/cloudevents+json"},
                     json.dumps(dict(document)).encode())


def _partition_key(event: CloudEvent) -> str | None:
    return event.get("partitionkey")


def _json_or_raw(value: bytes) -> object:
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


_PLAIN = frozenset(range(0x20, 0x7F))


def _header_value(value: str) -> str:
    """A value that can travel in an HTTP header. The SDK leaves attribute values as they
    are, and a non-ASCII one (an object key such as `S1A_ÖPOD.EOF` in `subject`) cannot be
    sent at all; those are percent-encoded as the HTTP binding specifies (space, '"', '%'
    and everything outside printable ASCII, as UTF-8 bytes), like the router does."""
    if all(ord(c) in _PLAIN for c in value):
        return value
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b not in (0x22, 0x25) else f"%{b:02X}"
                   for b in value.encode("utf-8"))


def _bytes(body: bytes | str | None) -> bytes:
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else body
