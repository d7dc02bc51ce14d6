"""A KafkaSource (sources.knative.dev/v1beta1) as the router runs it, and what it makes of
one Kafka record: the CloudEvent its sink receives.

As Knative's KafkaSource dispatcher (eventing-kafka-broker's data plane) does:
- a record that is a CloudEvent in the Kafka protocol binding (binary mode: `ce_*` headers,
  read with the cloudevents SDK; structured mode: content type application/cloudevents+json)
  is sent on as that event;
- any other record (what MinIO's Kafka target writes) is wrapped: type
  `dev.knative.kafka.event`, id `partition:<p>/offset:<o>`, source
  `/apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>`, subject `partition:<p>#<o>`, time
  the record's timestamp, the key (as text) in the `key` and `partitionkey` extensions, each
  header as a `kafkaheader<name>` extension (its `content-type` as datacontenttype), and the
  record's value, byte for byte, as data;
- `spec.ceOverrides.extensions` are set on every event.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloudevents import kafka
from cloudevents.exceptions import GenericException

from devstack.router import wire

if TYPE_CHECKING:
    from devstack.router.topology import Subscription

KAFKA_EVENT = "dev.knative.kafka.event"
HEADER_PREFIX = "kafkaheader"


@dataclass(frozen=True)
class KafkaSource:
    namespace: str
    name: str
    file: str
    bootstrap_servers: tuple[str, ...]  # as written: production's cluster
    topics: tuple[str, ...]
    consumer_group: str
    initial_offset: str  # earliest | latest: where a group with no committed offset starts
    ordered: bool  # one record at a time per partition (Knative's default)
    consumers: int  # members of the consumer group this source runs
    extensions: Mapping[str, str]  # spec.ceOverrides.extensions
    subscription: Subscription  # the sink and the delivery spec

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def source(self, topic: str) -> str:
        return f"/apis/v1/namespaces/{self.namespace}/kafkasources/{self.name}#{topic}"


@dataclass(frozen=True)
class Record:
    """One consumed Kafka record, independent of the client library."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def event_of(source: KafkaSource, record: Record) -> wire.Event:
    """The CloudEvent the sink receives for `record`."""
    event = _cloudevent(record) or _wrapped(source, record)
    if source.extensions:
        event = event.with_extensions(source.extensions)
    return event


def _cloudevent(record: Record) -> wire.Event | None:
    """The event a record carries in the Kafka protocol binding; None if it carries none
    (or an invalid one, which Knative wraps like any other record)."""
    headers = {name.lower(): value for name, value in record.headers}
    content_type = headers.get("content-type", b"").decode("utf-8", "replace")
    try:
        if content_type.split(";", 1)[0].strip().lower() == wire.STRUCTURED:
            return wire.parse({"content-type": content_type}, record.value or b"")
        if "ce_specversion" not in headers:
            return None
        message = kafka.KafkaMessage(headers, record.key, record.value or b"")
        event = kafka.from_binary(message, data_unmarshaller=lambda value: value)
        # The SDK makes up an id and a time when the record has none: keep what it carried.
        carried = {name[3:] for name in headers if name.startswith("ce_")}
        carried |= {"datacontenttype", "partitionkey"}
        attributes = {name: _text(value) for name, value in event.get_attributes().items()
                      if value is not None and name in carried}
        wire.validate(attributes)
    except (wire.WireError, GenericException, UnicodeDecodeError, ValueError):
        return None
    data = event.get_data()
    return wire.Event(attributes, bytes(data) if data else None)


def _wrapped(source: KafkaSource, record: Record) -> wire.Event:
    attributes = {
        "specversion": "1.0",
        "id": f"partition:{record.partition}/offset:{record.offset}",
        "source": source.source(record.topic),
        "type": KAFKA_EVENT,
        "subject": f"partition:{record.partition}#{record.offset}",
    }
    if record.timestamp_ms is not None and record.timestamp_ms >= 0:
        moment = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        attributes["time"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if record.key is not None:
        key = _key_text(record.key)
        attributes["partitionkey"] = key
        attributes["key"] = key
    for name, value in record.headers:
        if name.lower() == "content-type":
            attributes["datacontenttype"] = value.decode("utf-8", "replace").lower()
            continue
        safe = "".join(c for c in name.lower() if c.isascii() and c.isalnum())
        attributes[HEADER_PREFIX + safe] = (value or b"").decode("utf-8", "replace")
    return wire.Event(attributes, record.value if record.value else None)


def _key_text(key: bytes) -> str:
    # Knative's default key type is `string`; a key that is no UTF-8 text travels as base64.
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(key).decode("ascii")


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
