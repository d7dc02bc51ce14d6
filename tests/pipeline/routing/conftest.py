"""Routing tests run the poll and route steps against the test stack's PostgreSQL and RGW,
an SFTP server and HTTP receivers on loopback (tests/pipeline/routing/servers.py).

Pollers here write into their own inbox bucket (`routing-inbox`), which has no storage
notification: the `file.arrived` the poller journals is the only announcement, and tests
read it from the journal (no broker). A second RGW user (`routing-peer`, other keys) owns
the bucket that stands for another system's S3.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import TypeAdapter

from devstack.stack import ceph
from devstack.stack import up as stack_up
from shared.adapters import endpoint_policy, runtime, storage
from shared.adapters.catalogue import products
from shared.adapters.catalogue import routes as routes_table
from shared.adapters.catalogue import sources as sources_table
from shared.adapters.runtime import Runtime
from shared.adapters.settings import Settings
from shared.core.checksums import of_bytes
from shared.pipeline.routing import config
from tests.pipeline.routing.servers import PASSWORD, Receiver, SftpServer

INBOX = "routing-inbox"
PEER_BUCKET = "routing-peer"
PEER_ACCESS_KEY = "ROUTINGPEERKEY"
PEER_SECRET_KEY = "routing-peer-secret-0123"
# What the poll and route functions would find in their environment (Kubernetes Secrets).
ENV = {
    "AUXIP_TEST_SFTP_PASSWORD": PASSWORD,
    "AUXIP_TEST_PEER_ACCESS_KEY": PEER_ACCESS_KEY,
    "AUXIP_TEST_PEER_SECRET_KEY": PEER_SECRET_KEY,
}
_IDS = UUID("0d7e3c55-2a41-4f0e-b9a8-6c3f1e2d4b77")


@pytest.fixture(scope="package", autouse=True)
def loopback_targets_allowed() -> Iterator[None]:
    """The targets of these tests (HTTP, SFTP, the peer's S3) listen on 127.0.0.1, which
    the outbound policy refuses by default: allowed here, as the local stack does."""
    name = "AUXIP_OUTBOUND_ALLOWED_NETWORKS"
    saved = os.environ.get(name)
    os.environ[name] = "127.0.0.1/32"
    endpoint_policy.current.cache_clear()
    yield
    if saved is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = saved
    endpoint_policy.current.cache_clear()


@pytest.fixture(scope="session")
def peer_user(stack: stack_up.StackInfo) -> dict[str, str]:
    """Another S3 user on the same RGW: its bucket is another system's, its keys not ours."""
    state = stack.settings.state_dir
    argv = ["radosgw-admin", "-c", str(ceph.conf_path(state)), "-n", "client.rgw.auxip",
            "user"]
    info = subprocess.run([*argv, "info", "--uid=routing-peer"], capture_output=True,
                          text=True, cwd=ceph.folder(state), timeout=60)
    if info.returncode != 0:
        subprocess.run([*argv, "create", "--uid=routing-peer", "--display-name=routing peer",
                        f"--access-key={PEER_ACCESS_KEY}", f"--secret={PEER_SECRET_KEY}"],
                       check=True, capture_output=True, cwd=ceph.folder(state), timeout=60)
    s3 = peer_s3(stack.settings)
    storage.ensure_bucket(s3, PEER_BUCKET)
    return {"access_key": PEER_ACCESS_KEY, "secret_key": PEER_SECRET_KEY}


def peer_s3(settings: Settings) -> Any:
    from pydantic import SecretStr

    return storage.client(settings.model_copy(update={
        "s3_access_key": PEER_ACCESS_KEY, "s3_secret_key": SecretStr(PEER_SECRET_KEY)}))


@pytest.fixture
def rt(settings: Settings, s3: Any, clean_buckets: None, clean_catalogue: None
       ) -> Iterator[Runtime]:
    """The test stack with `routing-inbox` as inbox and no broker, emptied."""
    storage.ensure_bucket(s3, INBOX)
    storage.delete_prefix(s3, INBOX)
    built = runtime.build(settings.model_copy(update={"broker_url": None,
                                                      "inbox_bucket": INBOX}))
    yield built
    built.close()


@pytest.fixture
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServer]:
    server = SftpServer(tmp_path_factory.mktemp("sftp-root")).start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def rows(rt: Runtime, query: str, *params: object) -> list[dict]:
    with psycopg.connect(rt.settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def journal(rt: Runtime, event_type: str) -> list[dict]:
    return [r["data"] for r in rows(
        rt, "SELECT data FROM event_journal WHERE type = %s ORDER BY recorded_at", event_type)]


def add_source(rt: Runtime, **fields: Any) -> None:
    source = TypeAdapter(config.Source).validate_python(fields)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        sources_table.upsert(conn, config.source_row(source))


def add_route(rt: Runtime, **fields: Any) -> config.Route:
    route = config.Route.model_validate(fields)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        routes_table.upsert(conn, config.route_row(route))
    return route


@dataclass(frozen=True)
class Published:
    id: UUID
    name: str
    body: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body).hexdigest()


def publish(rt: Runtime, name: str, body: bytes, product_type: str, *, unit: str = "A",
            attributes: dict[str, Any] | None = None, logical_name: str | None = None
            ) -> Published:
    """A published product as publish leaves it: bytes in the archive, catalogue row."""
    product_id = uuid5(_IDS, name)
    key = f"routing-test/{name}"
    storage.put_bytes(rt.s3, rt.settings.archive_bucket, key, body)
    now = datetime.now(UTC)
    checksums = of_bytes(body).as_odata(now)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        products.insert_ingested(conn, products.NewProduct(
            id=product_id, logical_name=logical_name or name, product_type=product_type,
            platform_serial=unit, fingerprint=hashlib.md5(body).hexdigest(), layout="file",
            archive_key=key, content_length=len(body), checksums=checksums,
            content_start=now - timedelta(days=1), content_end=now, origin_date=now,
            attributes={"productType": product_type, **(attributes or {})}))
        products.mark_packaged(conn, product_id, name=name, distribution_key=key,
                               content_type="application/octet-stream",
                               content_length=len(body), checksums=checksums)
        products.mark_published(conn, product_id, publication_date=now,
                                eviction_date=now + timedelta(days=30))
    return Published(product_id, name, body)


def published_event(rt: Runtime, product: Published) -> Any:
    """The ProductPublished the publish step announced for it."""
    from events.products import ProductPublished

    [row] = rows(rt, "SELECT * FROM products WHERE id = %s", product.id)
    return ProductPublished(
        product_id=row["id"], name=row["name"], product_type=row["product_type"],
        platform_serial=row["platform_serial"], content_length=row["content_length"],
        content_start=row["content_start"], content_end=row["content_end"],
        origin_date=row["origin_date"], publication_date=row["publication_date"],
        eviction_date=row["eviction_date"])


def inbox_bytes(rt: Runtime, key: str) -> bytes:
    return storage.get_bytes(rt.s3, INBOX, key)


def orbit_name(n: int, product_type: str = "AUX_RESORB", unit: str = "A") -> str:
    start = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=3 * n)
    return (f"S1{unit}_OPER_{product_type}_OPOD_{start:%Y%m%dT%H%M%S}_V{start:%Y%m%dT%H%M%S}_"
            f"{start + timedelta(hours=3):%Y%m%dT%H%M%S}.EOF")


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
