"""The verify function on its PingSource tick: the scrub, then the repairs that need no
operator (a lost zip packaged again), or none when the tick's data says so; any other
event is ignored."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import functions_framework
import pytest
from cloudevents.http import CloudEvent

from devstack import demo_products
from events import bindings, types
from shared.adapters import runtime, storage
from shared.adapters.runtime import Runtime
from tests.pipeline.ingestion.conftest import Inbox
from tests.pipeline.integrity.conftest import START, ingest_files, product, publish_all

REPO = Path(__file__).parents[3]


@pytest.fixture
def client(rt: Runtime) -> Iterator[object]:
    runtime.current.cache_clear()
    app = functions_framework.create_app(target="handle",
                                         source=str(REPO / "functions" / "verify" / "main.py"))
    yield app.test_client()
    if runtime.current.cache_info().currsize:
        runtime.current().close()
    runtime.current.cache_clear()


def _tick(client: object, data: dict) -> int:
    ping = CloudEvent({"type": types.PING,
                       "source": "/apis/v1/namespaces/auxip/pingsources/verify-tick"}, data)
    headers, body = bindings.to_http_binary(ping)
    return client.post("/", headers=headers, data=body).status_code  # type: ignore[attr-defined]


def test_the_tick_scrubs_and_packages_a_lost_zip_again(rt: Runtime, inbox: Inbox,
                                                       client: object) -> None:
    folder, content = demo_products.aux_safe("C", "AUX_PP2", START, START - timedelta(days=1))
    ingest_files(rt, inbox, {f"{folder}/{p}": b for p, b in content.items()})
    publish_all(rt)
    row = product(rt, folder)
    bucket = rt.settings.archive_bucket
    storage.delete(rt.s3, bucket, row["distribution_key"])

    assert _tick(client, {"verify": "sample", "repair": False}) == 200
    assert storage.head(rt.s3, bucket, row["distribution_key"]) is None
    metrics = client.get("/metrics").data  # type: ignore[attr-defined]
    assert b'auxip_archive_disagreements_total{found_by="verify",kind="missing"}' in metrics

    assert _tick(client, {"verify": "sample", "repair": True}) == 200
    body = storage.get_bytes(rt.s3, bucket, row["distribution_key"])
    md5 = next(c["Value"] for c in row["checksums"] if c["Algorithm"] == "MD5")
    assert hashlib.md5(body).hexdigest() == md5

    other = CloudEvent({"type": types.PRODUCT_PUBLISHED, "source": "/test"}, {"x": 1})
    headers, data = bindings.to_http_binary(other)
    assert client.post("/", headers=headers, data=data).status_code == 200  # type: ignore
