"""Fixtures for the router tests: a scratch PostgreSQL database, in-process routers, and
HTTP subscribers on free loopback ports. Nothing is mocked."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.router import logs
from devstack.router.server import RouterServer
from devstack.router.settings import RouterSettings
from devstack.stack import kafka, processes
from shared.adapters.catalogue.migrations import upgrade
from tests.devstack.router.subscribers import Subscriber

SERVER = os.environ.get("ROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
# One scratch database per test port base: parallel sessions of other stacks keep theirs.
_BASE = os.environ.get("AUXIP_TEST_PORT_BASE", "18080")
DATABASE = "auxip_router_test" if _BASE == "18080" else f"auxip_router_test_{_BASE}"


@pytest.fixture(scope="session")
def database_url() -> str:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    url = f"{SERVER}/{DATABASE}"
    upgrade(url)
    logs.configure("WARNING")  # in-process routers: keep pytest's captured output readable
    return url


@pytest.fixture
def clean_database(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE router.events, router.deliveries, router.ping_ticks RESTART IDENTITY CASCADE")
    return database_url


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(*args, **kwargs) -> Subscriber:  # type: ignore[no-untyped-def]
        subscriber = Subscriber(*args, **kwargs)
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.close()


@pytest.fixture
def start_router(clean_database: str, tmp_path: Path) -> Iterator[Callable[..., RouterServer]]:
    """start_router(manifest_yaml, **settings) -> a running in-process router."""
    started: list[RouterServer] = []

    def start(manifest: str, **settings: object) -> RouterServer:
        directory = tmp_path / f"knative-{len(started)}"
        directory.mkdir()
        (directory / "manifests.yaml").write_text(manifest)
        options = {"router_workers": 8, "router_poll_s": 0.5} | settings
        router = RouterServer(
            RouterSettings(database_url=clean_database, knative_dir=directory, port_base=0, **options)
        )
        router.start()
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()


def wait_until_settled(database_url: str, timeout: float = 10.0) -> dict[str, int]:
    """Wait until no delivery is pending; returns the count of deliveries per status."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            counts = dict(conn.execute("SELECT status, count(*) FROM router.deliveries GROUP BY status").fetchall())
            if not counts.get("pending") or time.monotonic() > deadline:
                return counts
            time.sleep(0.02)


def deliveries(database_url: str) -> list[dict]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cursor = conn.execute(
            "SELECT d.*, e.event_id, e.type FROM router.deliveries d"
            " JOIN router.events e ON e.seq = d.event_seq ORDER BY d.id"
        )
        names = [c.name for c in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def broker(delivery: str = "") -> str:
    """A Broker manifest; `delivery` is YAML for spec.delivery, indented 4 spaces."""
    spec = f"spec:\n  delivery:\n{delivery}" if delivery else ""
    return f"""apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: test
{spec}
"""


def trigger(name: str, url: str, filters: str = "", delivery: str = "") -> str:
    """A Trigger manifest with a `uri` subscriber; `filters`/`delivery` are YAML blocks
    placed under spec (indented 2 spaces)."""
    return f"""---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: {name}
  namespace: test
spec:
  broker: default
{filters}
{delivery}
  subscriber:
    uri: {url}
"""


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Kafka-protocol broker of its own (the stack's Tansu) on a free loopback port:
    its bootstrap address. Tests use topics and groups of their own on it."""
    state = tmp_path_factory.mktemp("kafka-broker")
    port = free_port()
    try:
        kafka.start(state, "127.0.0.1", port)
    except Exception as error:
        pytest.fail(f"the Kafka broker did not start: {error}", pytrace=False)
    yield f"127.0.0.1:{port}"
    processes.stop(state, kafka.NAME)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
