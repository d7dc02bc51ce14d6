"""The whole local pipeline: the session's servers plus the event router and every function
as their own processes, exactly as `make up` runs them. Files enter the way producers send
them, as objects PUT into the inbox bucket; RGW's notification starts everything else.

The router and functions are stopped after this package's tests, so later tests own the
inbox (and the adapter's port) again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from cloudevents.http import CloudEvent

from devstack.stack import up as stack_up
from events import bindings
from shared.adapters.settings import Settings
from tests.whole_pipeline import query, running, wait_until  # noqa: F401  (used by the tests)

GRACE_S = 2.0  # SAFE folders incomplete this long are quarantined at the next sweep


@pytest.fixture(scope="package")
def pipeline(stack: stack_up.StackInfo, settings: Settings) -> Iterator[stack_up.StackInfo]:
    with running(settings, {"AUXIP_SAFE_FOLDER_GRACE_S": str(GRACE_S)}) as info:
        yield info


@pytest.fixture
def fresh(pipeline: stack_up.StackInfo, clean_buckets: None, clean_catalogue: None) -> stack_up.StackInfo:
    return pipeline


def ping(info: stack_up.StackInfo, service: str) -> None:
    """What a PingSource does: a dev.knative.sources.ping event to the service."""
    event = CloudEvent({"type": "dev.knative.sources.ping",
                        "source": f"/apis/v1/namespaces/auxip/pingsources/{service}-sweep"},
                       {"sweep": True})
    headers, body = bindings.to_http_binary(event)
    answer = httpx.post(info.layout.function_url(service) + "/", headers=headers,
                        content=body, timeout=60)
    assert answer.status_code < 300, answer.text


def notify_again(info: stack_up.StackInfo, bucket: str, keys: list[tuple[str, int, str]]) -> None:
    """Deliver the storage notification of each object once more, as an at-least-once
    storage does (same object, same ETag and sequencer)."""
    records = [{"eventVersion": "2.2", "eventSource": "ceph:s3", "eventName": "ObjectCreated:Put",
                "eventTime": "2026-11-24T10:00:00.000Z",
                "s3": {"bucket": {"name": bucket},
                       "object": {"key": key, "size": size, "eTag": etag}}}
               for key, size, etag in keys]
    answer = httpx.post(info.layout.function_url("inbox-adapter") + "/",
                        content=json.dumps({"Records": records}), timeout=60,
                        headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
