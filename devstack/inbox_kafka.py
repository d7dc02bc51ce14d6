"""The inbox's Kafka leg from the producer's side: bucket notifications written to the
KafkaSource's topic exactly as MinIO's Kafka target writes them, and how far the source's
consumer group has read.

MinIO's record (internal/event/target/kafka.go): key `<bucket>/<object name>`, value the
JSON `{"EventName": ..., "Key": <bucket>/<object name>, "Records": [<one S3 event record>]}`
with the object key URL-encoded in the record, no headers. Locally RGW cannot write to
Kafka, so `auxip kafka put | notify`, `auxip demo` on a stack wired for Kafka and the tests
play MinIO's part. The Kafka client (confluent-kafka) is a dev dependency, imported when
used: the production image's CLI runs without it.
"""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from devstack.layout import Layout
from devstack.router import manifests
from devstack.router.kafka_source import KafkaSource
from devstack.router.settings import RouterSettings
from devstack.router.topology import Defaults
from devstack.settings import StackSettings
from shared.adapters import storage

PRODUCE_TIMEOUT_S = 30.0


class KafkaUnavailable(RuntimeError):
    """No Kafka client installed, no broker answering, or a record not accepted."""


@dataclass(frozen=True)
class PartitionProgress:
    topic: str
    partition: int
    end: int  # offset the next record written gets
    committed: int | None  # the group's committed offset; None: none yet

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


def minio_record(bucket: str, key: str, *, size: int, etag: str,
                 content_type: str = "application/octet-stream",
                 event_time: datetime | None = None,
                 event_name: str = "s3:ObjectCreated:Put") -> tuple[str, bytes]:
    """(record key, record value) of one object's notification, as MinIO writes them."""
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": event_name,
        "userIdentity": {"principalId": "auxip"},
        "requestParameters": {"principalId": "auxip", "region": "",
                              "sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "auxip"},
                       "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe=""),  # Go's url.QueryEscape
                "size": size,
                "eTag": etag,
                "contentType": content_type,
                "userMetadata": {"content-type": content_type},
                # MinIO's sequencer: the event time in nanoseconds, in hexadecimal.
                "sequencer": f"{int(when.timestamp() * 1e9):X}",
            },
        },
        "source": {"host": socket.gethostname(), "port": "", "userAgent": "auxip"},
    }
    name = f"{bucket}/{key}"
    value = {"EventName": event_name, "Key": name, "Records": [record]}
    return name, json.dumps(value, separators=(",", ":")).encode()


def kafka_source(settings: StackSettings) -> KafkaSource:
    """The KafkaSource of the deployment's manifests (the one the router runs)."""
    directory = RouterSettings().manifests_dir()
    defaults = Defaults(timeout=300.0, backoff_delay=1.0)
    sources = manifests.load(directory, Layout(settings.port_base), defaults).kafka_sources
    if len(sources) != 1:
        raise KafkaUnavailable(f"{directory}: {len(sources)} KafkaSources, expected one")
    return sources[0]


def bootstrap_servers(settings: StackSettings) -> str:
    return settings.kafka_bootstrap_servers or Layout(settings.port_base).kafka_bootstrap


def produce(servers: str, topic: str, records: Iterable[tuple[str, bytes]]) -> list[int]:
    """Write records as MinIO's producer does (acks from all replicas); returns each one's
    partition. Raises KafkaUnavailable when any was not accepted."""
    # One record per request, as MinIO's synchronous producer sends them.
    producer = _client().Producer({"bootstrap.servers": servers, "acks": "all",
                                   "batch.num.messages": 1, "log_level": 0,
                                   "message.timeout.ms": int(PRODUCE_TIMEOUT_S * 1000)})
    partitions: list[int] = []
    errors: list[str] = []

    def report(index: int, error: Any, message: Any) -> None:
        if error is not None:
            errors.append(str(error))
        else:
            partitions[index] = message.partition()

    for index, (key, value) in enumerate(records):
        partitions.append(-1)
        producer.produce(topic, key=key.encode(), value=value,
                         on_delivery=functools.partial(report, index))
        producer.poll(0)
    left = producer.flush(PRODUCE_TIMEOUT_S)
    if errors or left:
        raise KafkaUnavailable(f"Kafka at {servers} did not take {len(errors) + left} record(s):"
                               f" {errors[0] if errors else 'timed out'}")
    return partitions


def announce(settings: StackSettings, s3: Any, bucket: str, keys: Sequence[str]) -> list[int]:
    """Write MinIO's notification of each existing object to the KafkaSource's topic."""
    records = []
    for key in keys:
        head = storage.head(s3, bucket, key)
        if head is None:
            raise FileNotFoundError(f"s3://{bucket}/{key} does not exist")
        records.append(minio_record(bucket, key, size=head["size"], etag=head["etag"],
                                    content_type=head["content_type"]))
    source = kafka_source(settings)
    return produce(bootstrap_servers(settings), source.topics[0], records)


def progress(servers: str, group: str, topics: Sequence[str]) -> list[PartitionProgress]:
    """Every partition of `topics`: its end offset and the group's committed offset."""
    kafka = _client()
    consumer = kafka.Consumer({"bootstrap.servers": servers, "group.id": group,
                               "enable.auto.commit": False, "log_level": 0})
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [kafka.TopicPartition(topic, p) for topic in topics
                      if topic in metadata.topics and not metadata.topics[topic].error
                      for p in sorted(metadata.topics[topic].partitions)]
        committed = consumer.committed(partitions, timeout=10) if partitions else []
        result = []
        for item in committed:
            _, end = consumer.get_watermark_offsets(item, timeout=10)
            result.append(PartitionProgress(item.topic, item.partition, end,
                                            item.offset if item.offset >= 0 else None))
        return result
    except kafka.KafkaException as error:
        raise KafkaUnavailable(f"Kafka at {servers}: {error}") from None
    finally:
        consumer.close()


def _client() -> Any:
    try:
        import confluent_kafka
    except ImportError:
        raise KafkaUnavailable(
            "the Kafka client is a dev dependency: pip install -e '.[dev]' (make venv)"
        ) from None
    return confluent_kafka
