"""The test stack: real PostgreSQL, clamd and Ceph RGW, brought up once per test session.

It runs beside a developer's `make up` on its own ports (AUXIP_TEST_PORT_BASE, default
18080) and state dir (.local/test-stack), with the database `auxip_test` dropped and
created anew on the configured server. Its Ceph is the persistent one users run (BlueStore:
the cluster is kept from one session to the next, its buckets emptied at the start).
Every process it starts is stopped at the end, on Ctrl-C and on SIGTERM too. Functions
and the router are not started here.

A service that does not come up fails the tests that need it, with its log: none skips.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from psycopg import conninfo, sql

from devstack.settings import StackSettings
from devstack.stack import postgres, processes
from devstack.stack import up as stack_up
from shared.adapters import storage
from tests.adapters.telemetry.ecs_lines import SecurityStream, stream_of_this_stack

REPO = Path(__file__).resolve().parents[1]
PORT_BASE = int(os.environ.get("AUXIP_TEST_PORT_BASE", "18080"))
STATE = REPO / ".local" / ("test-stack" if PORT_BASE == 18080 else f"test-stack-{PORT_BASE}")
DATABASE = "auxip_test" if PORT_BASE == 18080 else f"auxip_test_{PORT_BASE}"

# The server of the configured catalogue, with the test database on it.
_SERVER_URL = os.environ.get("AUXIP_DATABASE_URL", StackSettings.model_fields["database_url"].default)

# A shell that ran `eval "$(auxip env)"` points at the developer's stack: the tests must not.
for _name in [n for n in os.environ if n.startswith("AUXIP_") or n == "K_SINK"]:
    if _name != "AUXIP_S3_STORE_BYTES":
        del os.environ[_name]


def _interrupt(signum: int, frame: Any) -> None:
    # Turn SIGTERM/SIGHUP into Ctrl-C: pytest then tears the session fixtures down.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stack_teardown: stops the session's stack; runs after every other test"
    )
    config.addinivalue_line(
        "markers", "stack_restart: stops and starts the session's stack again; runs after"
        " the tests that share it, before the stack_teardown ones"
    )
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that takes the stack down must come after every test that needs it; one that
    # restarts it (new pids, a pipeline started anew) after those that keep its processes.
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("stack_teardown") is not None:
            return 2
        return 1 if item.get_closest_marker("stack_restart") is not None else 0

    items.sort(key=rank)


def planned_settings() -> StackSettings:
    """The test stack's settings before it runs (the database URL may still change)."""
    url = conninfo.make_conninfo(_SERVER_URL, dbname=DATABASE)
    return StackSettings(port_base=PORT_BASE, state_dir=STATE, database_url=url)




@pytest.fixture(scope="session")
def stack() -> Iterator[stack_up.StackInfo]:
    """PostgreSQL (fresh `auxip_test`), clamd, Ceph with the buckets and the notification."""
    wanted = planned_settings()
    lock = _one_session_at_a_time()
    stack_up.down(wanted)  # a previous session killed before its teardown
    try:
        try:
            url, _ = stack_up.database(wanted)
            postgres.drop_database(url)
            info = stack_up.up(wanted.model_copy(update={"database_url": url}),
                               services_only=True)
        except Exception as error:
            pytest.fail(f"the test stack did not start: {error}", pytrace=False)
        os.environ.update(stack_up.env(info.settings))
        s3 = storage.client(info.settings)
        for bucket in s3.list_buckets()["Buckets"]:  # what an earlier session left
            storage.delete_prefix(s3, bucket["Name"])
        yield info
    finally:
        stack_up.down(wanted)
        left = [p for p in processes.tracked(STATE) if processes.is_alive(STATE, p.name)]
        lock.close()
        assert not left, f"test stack processes still running: {left}"


def _one_session_at_a_time() -> IO[str]:
    """Another session on this tree (another engineer's) owns the stack until it ends:
    wait for it rather than take its stack down. The kernel drops the lock with its owner."""
    STATE.mkdir(parents=True, exist_ok=True)
    lock = open(STATE / "session.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"\nwaiting for another test session using {STATE} ...", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


@pytest.fixture(scope="session")
def settings(stack: stack_up.StackInfo) -> StackSettings:
    """StackSettings pointing at the running test stack."""
    return stack.settings


@pytest.fixture(scope="session")
def db_url(settings: StackSettings) -> str:
    return settings.database_url


@pytest.fixture(scope="session")
def s3(settings: StackSettings) -> Any:
    """A botocore S3 client of the test stack (shared.adapters.storage.client)."""
    return storage.client(settings)


@pytest.fixture
def clean_buckets(settings: StackSettings, s3: Any) -> None:
    """Empties the inbox, archive and quarantine buckets before the test."""
    for bucket in (settings.inbox_bucket, settings.archive_bucket, settings.quarantine_bucket):
        storage.delete_prefix(s3, bucket)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the test catalogue (autocommit)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def clean_catalogue(db_url: str) -> None:
    """Empties every catalogue table (the migrations' record stays) before the test."""
    truncate_catalogue(db_url)


def truncate_catalogue(db_url: str) -> None:
    """Every catalogue table emptied (the migrations' record stays)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )]
        if tables:
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            ))


@pytest.fixture
def security_events(stack: stack_up.StackInfo) -> SecurityStream:
    """The stack's security stream (a file, see devstack.stack.up.env), from now on: what
    this test causes, in this process or another of the stack."""
    return stream_of_this_stack()
