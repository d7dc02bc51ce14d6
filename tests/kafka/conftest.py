"""The Kafka leg end to end: the whole pipeline as processes (`make up`), wired as
production's MinIO inbox is: no webhook on the inbox bucket, MinIO-format records on the
KafkaSource's topic announce each object, the router's KafkaSource delivers them to
inbox-adapter. RGW cannot write to Kafka, so the tests write the records MinIO's Kafka
target would (shared.inbox_kafka).

The inbox is a bucket of its own (`auxip-kafka-inbox`): the session's inbox keeps its RGW
webhook (RGW cannot take one back) for the other packages. The processes are stopped after
this package.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.settings import StackSettings
from devstack.stack import processes
from devstack.stack import up as stack_up
from functions import FUNCTIONS
from shared.adapters import storage
from tests.reliability.end_state import close_sessions
from tests.whole_pipeline import running

KAFKA_INBOX = "auxip-kafka-inbox"
PIPELINE_ENV = {
    # Members join in ~1 s; done records are committed twice a second.
    "AUXIP_ROUTER_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "AUXIP_ROUTER_KAFKA_COMMIT_INTERVAL_S": "0.5",
}


@pytest.fixture(scope="package")
def kafka_pipeline(stack: stack_up.StackInfo,
                   settings: StackSettings) -> Iterator[stack_up.StackInfo]:
    # Another package's pipeline may still run with its own environment: start afresh.
    for name in (stack_up.ROUTER, stack_up.TOKEN_ISSUER, *FUNCTIONS):
        processes.stop(settings.state_dir, name)
    wired = settings.model_copy(update={"inbox_bucket": KAFKA_INBOX,
                                        "inbox_notifications": "kafka"})
    with running(wired, PIPELINE_ENV) as info:
        yield info
        close_sessions()


@pytest.fixture
def fresh(kafka_pipeline: stack_up.StackInfo, clean_catalogue: None) -> stack_up.StackInfo:
    s = kafka_pipeline.settings
    client = storage.client(s)
    for bucket in (s.inbox_bucket, s.archive_bucket, s.quarantine_bucket):
        storage.delete_prefix(client, bucket)
    return kafka_pipeline
