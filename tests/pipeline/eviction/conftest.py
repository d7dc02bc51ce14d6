"""Eviction tests run against the test stack's PostgreSQL and RGW: product rows seeded as
publish leaves them, their bytes in the archive bucket, and a broker that records what it
receives. The prip fixtures serve the real OData API over HTTP (tests/prip/conftest.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.adapters import runtime, storage
from shared.adapters.runtime import Runtime
from shared.adapters.settings import Settings
from shared.core.s1time import OPEN_END
from tests.prip.conftest import api, function_env, http, issuer, prip  # noqa: F401

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
SOON = NOW + timedelta(days=1)


class Broker(BaseHTTPRequestHandler):
    """Records the id of every event posted to it (the Broker's ingress)."""

    ids: list[str]
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).ids.append(self.headers["ce-id"])
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broker() -> Iterator[tuple[str, type[Broker]]]:
    handler = type("Receiver", (Broker,), {"ids": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def rt(settings: Settings, clean_buckets: None, clean_catalogue: None,
       broker: tuple[str, type[Broker]]) -> Iterator[Runtime]:
    built = runtime.build(settings.model_copy(update={"broker_url": broker[0]}))
    yield built
    built.close()


@dataclass(frozen=True)
class Seeded:
    """A published product as publish leaves it, and the archive keys of its bytes."""

    id: UUID
    logical_name: str
    name: str
    product_type: str
    eviction_date: datetime
    objects: list[str] = field(default_factory=list)


def seed(rt: Runtime, logical_name: str, product_type: str, eviction_date: datetime, *,
         layout: str = "file", online: bool = True, archive_key: str | None = None,
         files: tuple[str, ...] = ("manifest.safe", "measurement/a.dat", "support/s.xsd"),
         ) -> Seeded:
    """Rows and objects: `file` is served as it arrived (one object for both keys), a
    `safe-folder` has its files under `ingested/<type>/<X.SAFE>/` and a packaged zip, a
    `safe-archive` an ingested zip and a packaged zip."""
    folder = f"ingested/{product_type}/"
    if layout == "file":
        name = logical_name
        archive = archive_key or folder + name
        distribution = archive
        objects = [archive]
    elif layout == "safe-folder":
        name = logical_name + ".zip"
        archive = archive_key or f"{folder}{logical_name}/"
        distribution = f"products/{product_type}/{name}"
        objects = [f"{folder}{logical_name}/{f}" for f in files] + [distribution]
    else:
        name = logical_name + ".zip"
        archive = archive_key or folder + name
        distribution = f"products/{product_type}/{name}"
        objects = [archive, distribution]
    for key in objects:
        storage.put_bytes(rt.s3, rt.settings.archive_bucket, key, key.encode())
    product_id = uuid4()
    published = NOW - timedelta(days=30)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (id, logical_name, name, status, product_type,"
            " fingerprint, layout, archive_key, distribution_key, content_length,"
            " content_start, content_end, origin_date, publication_date, modification_date,"
            " eviction_date, online, attributes) VALUES (%s, %s, %s, 'published', %s,"
            " 'fingerprint', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (product_id, logical_name, name, product_type, layout, archive, distribution,
             100, published, OPEN_END, published, published, published, eviction_date,
             online, json.dumps({"productType": product_type})),
        )
    return Seeded(product_id, logical_name, name, product_type, eviction_date, objects)


def rows(rt: Runtime, query: str, *params: Any) -> list[dict]:
    with psycopg.connect(rt.settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def product(rt: Runtime, seeded: Seeded) -> dict:
    [row] = rows(rt, "SELECT * FROM products WHERE id = %s", seeded.id)
    return row


def evicted_events(rt: Runtime) -> list[dict]:
    return rows(rt, "SELECT * FROM event_journal WHERE type = 'org.auxip.product.evicted.v1'"
                    " ORDER BY recorded_at")


def present(rt: Runtime, keys: list[str]) -> list[str]:
    return [k for k in keys if storage.exists(rt.s3, rt.settings.archive_bucket, k)]


def archive_keys(rt: Runtime) -> list[str]:
    return sorted(storage.list_keys(rt.s3, rt.settings.archive_bucket))
