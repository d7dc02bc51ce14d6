"""The whole pipeline as processes (router, token issuer, every function) on top of the
session's test stack, as `make up` runs it; started and stopped by the test packages that
drive it end to end (tests/e2e, tests/operations, ...)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.stack import processes
from devstack.stack import up as stack_up
from functions import FUNCTIONS
from shared.adapters.settings import Settings

# Small pools: one PostgreSQL server (max_connections 100) may serve several stacks, and
# each step needs one connection only.
SMALL_POOLS = {"AUXIP_DB_POOL_MAX": "3", "AUXIP_ROUTER_DB_POOL": "4",
               "AUXIP_ROUTER_WORKERS": "4",
               # Subscribers' test endpoints (reliability's sink and canary) listen on
               # loopback, which notify and prip refuse by default.
               "AUXIP_NOTIFY_ALLOWED_NETWORKS": "127.0.0.1/32"}


@contextmanager
def running(settings: Settings, env: Mapping[str, str]) -> Iterator[stack_up.StackInfo]:
    """Start what is not running with `env` added to the processes' environment; stop the
    router, issuer and functions afterwards so later tests own the inbox (and ports)."""
    added = {**SMALL_POOLS, **env}
    os.environ.update(added)
    try:
        try:
            info = stack_up.up(settings)
        except Exception as error:
            pytest.fail(f"the pipeline did not start: {error}", pytrace=False)
        yield info
    finally:
        state = settings.state_dir
        ours = {stack_up.ROUTER, stack_up.TOKEN_ISSUER, *FUNCTIONS}
        # All at once: one by one, each gunicorn's graceful stop adds up to ~20 s.
        processes.stop_many([p for p in processes.tracked(state) if p.name in ours])
        for name in ours:
            processes.stop(state, name)  # gone already: forgets its pid file
        for name in added:
            os.environ.pop(name, None)


def query(settings: Settings, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(what: str, done: Callable[[], bool], timeout_s: float = 90.0,
               report: Callable[[], Any] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {report() if report else ''}")
