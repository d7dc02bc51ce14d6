"""KafkaSource manifests -> what the router consumes and where it delivers; a record -> the
CloudEvent its sink gets; the offset tracker. No broker needed here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from devstack.layout import Layout
from devstack.router import kafka_source
from devstack.router.kafka_consumer import OffsetTracker
from devstack.router.kafka_source import Record
from devstack.router.manifests import ManifestError, load
from devstack.router.settings import REPOSITORY_ROOT
from devstack.router.topology import Defaults

LAYOUT = Layout(8080)
DEFAULTS = Defaults(timeout=300.0, backoff_delay=1.0)


def source_yaml(spec: str) -> str:
    return ("apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\n"
            "metadata: {name: s, namespace: ns}\n" + spec)


def load_one(tmp_path: Path, spec: str) -> kafka_source.KafkaSource:
    (tmp_path / "m.yaml").write_text(source_yaml(spec))
    (source,) = load(tmp_path, LAYOUT, DEFAULTS).kafka_sources
    return source


def test_the_repository_kafka_source_feeds_the_inbox_adapter():
    topology = load(REPOSITORY_ROOT / "knative" / "base", LAYOUT, DEFAULTS)
    (source,) = topology.kafka_sources
    assert source.key == "auxip/minio-inbox"
    assert source.topics == ("auxip-inbox-notifications",)
    assert (source.consumer_group, source.initial_offset, source.ordered, source.consumers) == (
        "auxip-inbox-adapter", "earliest", True, 1)
    subscription = source.subscription
    assert subscription.url == LAYOUT.function_url("inbox-adapter")
    assert subscription.broker is None  # a source's sink replies go nowhere
    delivery = subscription.delivery
    assert (delivery.retry, delivery.backoff_policy, delivery.backoff_delay) == (
        5, "exponential", 0.2)
    assert delivery.dead_letter and delivery.dead_letter.url == LAYOUT.function_url("deadletter")
    # Failed records can be sent again through the dispatcher: it knows the subscription.
    assert topology.subscriptions["kafkasource:auxip/minio-inbox"] is subscription


def test_defaults_follow_knative(tmp_path):
    source = load_one(tmp_path, "spec: {bootstrapServers: ['k:9092'], topics: [t], "
                                "sink: {uri: 'http://127.0.0.1:9/'}}")
    assert source.initial_offset == "latest" and source.ordered and source.consumers == 1
    delivery = source.subscription.delivery
    assert delivery.retry == 0 and delivery.dead_letter is None
    # Knative names an unset group once; here it is stable per source, not random.
    assert source.consumer_group.startswith("knative-kafka-source-")
    assert load_one(tmp_path, "spec: {bootstrapServers: ['k:9092'], topics: [t], "
                              "sink: {uri: 'http://127.0.0.1:9/'}}").consumer_group == (
        source.consumer_group)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("spec: {topics: [t], sink: {uri: 'http://x/'}}", "spec.bootstrapServers: must be"),
        ("spec: {bootstrapServers: [k], topics: [t], sink: {uri: 'http://x/'}}",
         "spec.bootstrapServers: must be a non-empty list of host:port"),
        ("spec: {bootstrapServers: ['k:1'], topics: [], sink: {uri: 'http://x/'}}", "spec.topics"),
        ("spec: {bootstrapServers: ['k:1'], topics: ['a b'], sink: {uri: 'http://x/'}}",
         "spec.topics"),
        ("spec: {bootstrapServers: ['k:1'], topics: [t]}", "spec.sink: is required"),
        ("spec: {bootstrapServers: ['k:1'], topics: [t], sink: {uri: 'http://x/'},"
         " initialOffset: newest}", "spec.initialOffset: must be earliest or latest"),
        ("spec: {bootstrapServers: ['k:1'], topics: [t], sink: {uri: 'http://x/'},"
         " ordering: random}", "spec.ordering: must be ordered or unordered"),
        ("spec: {bootstrapServers: ['k:1'], topics: [t], sink: {uri: 'http://x/'},"
         " consumers: 0}", "spec.consumers: must be a positive integer"),
        ("spec: {bootstrapServers: ['k:1'], topics: [t], sink: {uri: 'http://x/'},"
         " topic: t}", "spec.topic: unknown field"),
        ("spec: {bootstrapServers: ['k:1'], topics: [t], sink: {uri: 'http://x/'},"
         " delivery: {retry: -2}}", "spec.delivery.retry: must be a non-negative integer"),
    ],
)
def test_bad_kafka_sources_are_reported_with_file_object_and_field(tmp_path, spec, message):
    (tmp_path / "m.yaml").write_text(source_yaml(spec))
    with pytest.raises(ManifestError) as raised:
        load(tmp_path, LAYOUT, DEFAULTS)
    assert str(raised.value).startswith(f"{tmp_path / 'm.yaml'}: KafkaSource ns/s: ")
    assert message in str(raised.value)


def test_the_api_version_is_v1beta1(tmp_path):
    (tmp_path / "m.yaml").write_text(source_yaml("spec: {}").replace("v1beta1", "v1"))
    with pytest.raises(ManifestError, match="use sources.knative.dev/v1beta1"):
        load(tmp_path, LAYOUT, DEFAULTS)


SOURCE = load(REPOSITORY_ROOT / "knative" / "base", LAYOUT, DEFAULTS).kafka_sources[0]


def test_a_plain_record_is_wrapped_as_knative_does():
    value = b'{"EventName":"s3:ObjectCreated:Put","Records":[]}'
    event = kafka_source.event_of(SOURCE, Record(
        "auxip-inbox-notifications", 2, 41, 1_765_000_000_123, b"auxip-inbox/S1A_X.EOF", value,
        (("X-Minio-Hint", b"a"), ("content-type", b"Application/JSON"))))
    assert dict(event.attributes) == {
        "specversion": "1.0", "id": "partition:2/offset:41", "type": "dev.knative.kafka.event",
        "source": "/apis/v1/namespaces/auxip/kafkasources/minio-inbox#auxip-inbox-notifications",
        "subject": "partition:2#41", "time": "2025-12-06T05:46:40.123Z",
        "key": "auxip-inbox/S1A_X.EOF", "partitionkey": "auxip-inbox/S1A_X.EOF",
        "kafkaheaderxminiohint": "a", "datacontenttype": "application/json",
    }
    assert event.data == value


def test_a_record_without_key_value_or_timestamp():
    event = kafka_source.event_of(SOURCE, Record("t", 0, 0, None, None, None))
    assert "key" not in event.attributes and "time" not in event.attributes
    assert event.data is None


def test_cloudevent_records_pass_through_in_either_mode():
    binary = Record("t", 0, 1, 0, b"k", b"\x00\x01", (
        ("ce_specversion", b"1.0"), ("ce_id", b"e-1"), ("ce_source", b"/s"), ("ce_type", b"x.y"),
        ("content-type", b"application/octet-stream")))
    event = kafka_source.event_of(SOURCE, binary)
    assert dict(event.attributes) == {"specversion": "1.0", "id": "e-1", "source": "/s",
                                      "type": "x.y", "partitionkey": "k",
                                      "datacontenttype": "application/octet-stream"}
    assert event.data == b"\x00\x01"
    document = {"specversion": "1.0", "id": "e-2", "source": "/s", "type": "x.z",
                "data_base64": base64.b64encode(b"raw").decode()}
    structured = Record("t", 0, 2, 0, None, json.dumps(document).encode(),
                        (("content-type", b"application/cloudevents+json"),))
    event = kafka_source.event_of(SOURCE, structured)
    assert event.id == "e-2" and event.data == b"raw"


@pytest.mark.parametrize("headers", [
    (("ce_specversion", b"1.0"), ("ce_source", b"/s"), ("ce_type", b"x")),  # no id
    (("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"x")),
    (("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"x"),
     ("ce_time", b"yesterday")),
    (("content-type", b"application/cloudevents+json"),),  # the value is no JSON event
])
def test_an_invalid_cloudevent_record_is_wrapped_like_any_record(headers):
    event = kafka_source.event_of(SOURCE, Record("t", 1, 7, 0, None, b"not json", headers))
    assert event.type == "dev.knative.kafka.event" and event.id == "partition:1/offset:7"
    assert event.data == b"not json"


def test_a_key_that_is_not_text_travels_as_base64():
    event = kafka_source.event_of(SOURCE, Record("t", 0, 0, 0, b"\xff\xfe", b"v"))
    assert event.attributes["key"] == base64.b64encode(b"\xff\xfe").decode()


def test_offsets_are_committed_up_to_the_first_record_not_done():
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 15, 16):  # 13 and 14 never come (e.g. transaction markers)
        tracker.read(offset)
    assert tracker.to_commit() is None
    tracker.done(11)
    tracker.done(12)
    assert tracker.to_commit() is None  # 10 is still in delivery
    tracker.done(10)
    assert tracker.to_commit() == 13
    tracker.committed = 13
    assert tracker.to_commit() is None
    tracker.done(16)
    assert tracker.to_commit() is None
    tracker.done(15)
    assert tracker.to_commit() == 17
