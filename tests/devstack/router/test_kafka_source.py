"""The router's KafkaSource against a real Kafka-protocol broker: records in, CloudEvents
out over loopback HTTP, offsets committed in the broker, failed records in PostgreSQL."""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from cloudevents.http import CloudEvent
from confluent_kafka import Producer

from devstack import inbox_kafka
from events import bindings
from tests.devstack.router.conftest import deliveries, wait_until_settled
from tests.devstack.router.subscribers import Received

FAST = {"router_kafka_session_timeout_ms": 1000, "router_kafka_commit_interval_s": 0.2}


def kafka_source(name: str, sink: str, topic: str, group: str, extra: str = "") -> str:
    """A KafkaSource manifest; `extra` is YAML placed under spec (indented 2 spaces)."""
    return f"""---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: {name}
  namespace: test
spec:
  bootstrapServers: [kafka.production.example:9092]
  topics: [{topic}]
  consumerGroup: {group}
  initialOffset: earliest
{extra}
  sink:
    uri: {sink}
"""


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"topic-{tag}", f"group-{tag}"


def produce(servers: str, topic: str, records: list[dict]) -> list[tuple[int, int]]:
    """Write records (key, value, headers, partition) one per request; (partition, offset)
    of each, in order."""
    producer = Producer({"bootstrap.servers": servers, "batch.num.messages": 1, "log_level": 0})
    placed: list[tuple[int, int]] = [(-1, -1)] * len(records)

    def report(index: int, error: object, message: object) -> None:
        assert error is None, error
        placed[index] = (message.partition(), message.offset())  # type: ignore[attr-defined]

    for index, record in enumerate(records):
        extra = {"partition": record["partition"]} if "partition" in record else {}
        producer.produce(topic, key=record.get("key"), value=record.get("value"),
                         headers=record.get("headers"),
                         on_delivery=functools.partial(report, index), **extra)
    assert producer.flush(30) == 0
    return placed


def committed(servers: str, group: str, topic: str) -> dict[int, int | None]:
    return {p.partition: p.committed for p in inbox_kafka.progress(servers, group, [topic])}


def wait_committed(servers: str, group: str, topic: str, expected: dict[int, int],
                   timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = committed(servers, group, topic)
        if all(now.get(p) == offset for p, offset in expected.items()):
            return
        assert time.monotonic() < deadline, f"committed {now}, expected {expected}"
        time.sleep(0.1)


def by_id(received: list[Received]) -> dict[str, Received]:
    return {r.headers["ce-id"]: r for r in received}


def test_records_become_the_cloudevents_a_kafkasource_sends(start_router, subscribers,
                                                              kafka_broker):
    sink = subscribers()
    topic, group = names()
    start_router(kafka_source("minio", sink.url, topic, group,
                              "  ceOverrides:\n    extensions: {origin: local}"),
                 kafka_bootstrap_servers=kafka_broker, **FAST)
    minio_key, minio_value = inbox_kafka.minio_record("auxip-inbox", "S1A_X.EOF", size=5,
                                                      etag="abc")
    structured = {"specversion": "1.0", "id": "ce-2", "source": "/producer",
                  "type": "org.example.structured",
                  "data_base64": base64.b64encode(b"\x00raw").decode()}
    binary = bindings.to_kafka_message(
        CloudEvent({"id": "ce-1", "source": "/producer", "type": "org.example.binary",
                    "datacontenttype": "application/json"},
                   {"x": 1}), key="k")
    before = datetime.now(UTC).replace(microsecond=0)
    placed = produce(kafka_broker, topic, [
        {"key": minio_key.encode(), "value": minio_value},
        {"key": b"\xff\x00", "value": b'{"a":1}',
         "headers": [("Content-Type", b"Application/JSON"), ("X-Trace-Id", b"abc")]},
        {"key": binary.key, "value": binary.value, "headers": list(binary.headers.items())},
        {"value": json.dumps(structured).encode(),
         "headers": [("content-type", b"application/cloudevents+json")]},
        # Claims to be a CloudEvent and is none (no id): wrapped like any record.
        {"value": b"x", "headers": [("ce_specversion", b"1.0"), ("ce_type", b"t")]},
    ])
    got = by_id(sink.wait_for(5, timeout=30))
    source = f"/apis/v1/namespaces/test/kafkasources/minio#{topic}"

    (p, o) = placed[0]
    minio = got[f"partition:{p}/offset:{o}"].headers
    assert minio["ce-type"] == "dev.knative.kafka.event" and minio["ce-specversion"] == "1.0"
    assert minio["ce-source"] == source and minio["ce-subject"] == f"partition:{p}#{o}"
    assert minio["ce-key"] == minio["ce-partitionkey"] == "auxip-inbox/S1A_X.EOF"
    assert before <= datetime.fromisoformat(minio["ce-time"]) <= datetime.now(UTC)
    assert "content-type" not in minio and minio["ce-origin"] == "local"
    assert got[f"partition:{p}/offset:{o}"].body == minio_value  # byte for byte

    (p, o) = placed[1]
    headed = got[f"partition:{p}/offset:{o}"]
    assert headed.headers["content-type"] == "application/json"
    assert headed.headers["ce-kafkaheaderxtraceid"] == "abc"
    assert headed.headers["ce-key"] == base64.b64encode(b"\xff\x00").decode()
    assert headed.body == b'{"a":1}'

    passed = got["ce-1"]  # a CloudEvent record is sent on as that event
    assert passed.headers["ce-type"] == "org.example.binary"
    assert passed.headers["ce-source"] == "/producer" and passed.headers["ce-partitionkey"] == "k"
    assert passed.headers["ce-origin"] == "local" and passed.body == binary.value
    assert got["ce-2"].headers["ce-type"] == "org.example.structured"
    assert got["ce-2"].body == b"\x00raw"

    (p, o) = placed[4]
    invalid = got[f"partition:{p}/offset:{o}"].headers
    assert invalid["ce-type"] == "dev.knative.kafka.event"
    assert invalid["ce-kafkaheadercespecversion"] == "1.0"

    ends: dict[int, int] = {}
    for partition, offset in placed:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    wait_committed(kafka_broker, group, topic, ends)


def test_an_offset_is_committed_only_once_the_sink_took_its_record(start_router, subscribers,
                                                                   kafka_broker):
    broken = threading.Event()
    broken.set()
    sink = subscribers(lambda _r, _i: (503, {}, b"") if broken.is_set() else (200, {}, b""))
    topic, group = names()
    start_router(kafka_source("slow", sink.url, topic, group,
                              "  delivery:\n    retry: 100\n    backoffPolicy: linear\n"
                              "    backoffDelay: PT0.05S"),
                 kafka_bootstrap_servers=kafka_broker, **FAST)
    placed = produce(kafka_broker, topic, [{"value": b"%d" % i, "partition": 0} for i in range(3)])
    assert [offset for _, offset in placed] == [0, 1, 2]
    attempts = sink.wait_for(4, timeout=30)
    time.sleep(1.0)  # five commit intervals
    assert committed(kafka_broker, group, topic)[0] is None
    # Ordered: the partition waits on its first record.
    assert {r.headers["ce-id"] for r in attempts} == {"partition:0/offset:0"}
    broken.clear()
    wait_committed(kafka_broker, group, topic, {0: 3})
    delivered = [r.headers["ce-id"] for r in sink.received if r.body]
    assert delivered[-3:] == [f"partition:0/offset:{i}" for i in range(3)]


def test_retries_then_the_dead_letter_sink_and_the_partition_moves_on(start_router, subscribers,
                                                                       kafka_broker):
    sink = subscribers(lambda r, _i: (500, {"kne-reason": "disk full"}, b"boom")
                       if r.body == b"poison" else (200, {}, b""))
    dead = subscribers()
    topic, group = names()
    start_router(kafka_source("dls", sink.url, topic, group,
                              f"  delivery:\n    retry: 2\n    backoffDelay: PT0.02S\n"
                              f"    deadLetterSink:\n      uri: {dead.url}"),
                 kafka_bootstrap_servers=kafka_broker, **FAST)
    produce(kafka_broker, topic, [{"value": b"poison", "partition": 0},
                                  {"value": b"fine", "partition": 0}])
    (letter,) = dead.wait_for(1, timeout=30)
    assert letter.headers["ce-id"] == "partition:0/offset:0" and letter.body == b"poison"
    assert letter.headers["ce-knativeerrordest"] == sink.url
    assert letter.headers["ce-knativeerrorcode"] == "500"
    assert base64.b64decode(letter.headers["ce-knativeerrordata"]) == b"boom"
    assert letter.headers["ce-reason"] == "disk full"
    assert letter.headers["ce-auxipattempts"] == "3"
    wait_committed(kafka_broker, group, topic, {0: 2})
    assert [r.body for r in sink.received] == [b"poison"] * 3 + [b"fine"]


def test_a_record_no_sink_took_is_kept_failed_and_can_be_sent_again(start_router, subscribers,
                                                                     kafka_broker,
                                                                     clean_database):
    refusing = threading.Event()
    refusing.set()
    sink = subscribers(lambda _r, _i: (400, {}, b"no") if refusing.is_set() else (200, {}, b""))
    topic, group = names()
    router = start_router(kafka_source("nodls", sink.url, topic, group),
                          kafka_bootstrap_servers=kafka_broker, **FAST)
    produce(kafka_broker, topic, [{"key": b"k", "value": b"payload", "partition": 0}])
    wait_committed(kafka_broker, group, topic, {0: 1})  # kept first, then committed
    (row,) = deliveries(clean_database)
    assert row["status"] == "failed" and row["trigger"] == "kafkasource:test/nodls"
    assert row["event_id"] == "partition:0/offset:0" and row["error_code"] == 400
    assert len(sink.received) == 1  # a 400 is not retried
    refusing.clear()
    assert router.store.redeliver([row["id"]]) == 1
    assert wait_until_settled(clean_database) == {"delivered": 1}
    again = sink.wait_for(2)[1]
    assert again.headers["ce-id"] == "partition:0/offset:0" and again.body == b"payload"
    assert again.headers["ce-key"] == "k"


def concurrency_probe() -> tuple[Callable[[Received, int], tuple[int, dict, bytes]], dict]:
    seen = {"now": 0, "max": 0}
    lock = threading.Lock()

    def respond(_request: Received, _index: int) -> tuple[int, dict, bytes]:
        with lock:
            seen["now"] += 1
            seen["max"] = max(seen["max"], seen["now"])
        time.sleep(0.1)
        with lock:
            seen["now"] -= 1
        return 200, {}, b""

    return respond, seen


def test_ordered_delivers_a_partition_one_record_at_a_time_unordered_at_once(
    start_router, subscribers, kafka_broker
):
    ordered_respond, ordered_seen = concurrency_probe()
    unordered_respond, unordered_seen = concurrency_probe()
    ordered_sink, unordered_sink = subscribers(ordered_respond), subscribers(unordered_respond)
    (ordered_topic, ordered_group), (unordered_topic, unordered_group) = names(), names()
    start_router(kafka_source("ordered", ordered_sink.url, ordered_topic, ordered_group)
                 + kafka_source("unordered", unordered_sink.url, unordered_topic,
                                unordered_group, "  ordering: unordered"),
                 kafka_bootstrap_servers=kafka_broker, **FAST)
    records = [{"value": b"%d" % i, "partition": 0} for i in range(8)]
    produce(kafka_broker, ordered_topic, records)
    produce(kafka_broker, unordered_topic, records)
    in_order = ordered_sink.wait_for(8, timeout=30)
    unordered_sink.wait_for(8, timeout=30)
    assert [r.body for r in in_order] == [b"%d" % i for i in range(8)]
    assert ordered_seen["max"] == 1
    assert unordered_seen["max"] > 1
    wait_committed(kafka_broker, ordered_group, ordered_topic, {0: 8})
    wait_committed(kafka_broker, unordered_group, unordered_topic, {0: 8})
