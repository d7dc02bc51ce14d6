"""`make run`'s last step: put the generated demo set into the inbox bucket, as any
producer would, and wait until the pipeline has published it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from devstack import demo_products, inbox_kafka
from devstack.settings import StackSettings
from shared.adapters import storage


@dataclass(frozen=True)
class DemoReport:
    published: list[dict]
    rejected: list[dict]
    missing: list[str]
    seconds: float


def expected_names(files: list[demo_products.DemoFile]) -> set[str]:
    """The logical names the demo files make (a folder's objects make one product)."""
    names = set()
    for item in files:
        top = item.key.split("/", 1)[0]
        names.add(top[: -len(".zip")] if top.endswith(".SAFE.zip") else top)
    return names


def run(settings: StackSettings, *, timeout_s: float = 120.0,
        progress: Callable[[int, int], None] | None = None) -> DemoReport:
    files = demo_products.demo_set()
    wanted = expected_names(files)
    s3 = storage.client(settings)
    began = time.monotonic()
    for item in files:
        storage.put_bytes(s3, settings.inbox_bucket, item.key, item.body)
    if settings.inbox_notifications == "kafka":  # as MinIO's Kafka target would
        inbox_kafka.announce(settings, s3, settings.inbox_bucket, [item.key for item in files])
    published: list[dict] = []
    while True:
        with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
            published = conn.execute(
                "SELECT id, name, logical_name, product_type, platform_serial, content_start,"
                " content_end, content_length FROM products WHERE status = 'published'"
                " AND logical_name = ANY(%s) ORDER BY product_type, name", (list(wanted),),
            ).fetchall()
            rejected = conn.execute(
                "SELECT name, reason, detail FROM rejections WHERE name = ANY(%s)"
                " AND rejected_at > now() - make_interval(secs => %s)",
                (list(wanted), time.monotonic() - began + 1),
            ).fetchall()
        done = {row["logical_name"] for row in published} | {row["name"] for row in rejected}
        if progress:
            progress(len(done & wanted), len(wanted))
        if wanted <= done or time.monotonic() - began > timeout_s:
            break
        time.sleep(0.3)
    return DemoReport(published, rejected, sorted(wanted - done), time.monotonic() - began)
