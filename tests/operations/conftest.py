"""Operations against the whole local pipeline (router and every function as processes,
as `make up` runs them), with the Broker's retries shortened so a failing handler reaches
the dead-letter sink in about a second. The processes stop after this package's tests."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from psycopg.rows import dict_row

from shared.cli import deadletters, events, kpi, products, replay
from shared.settings import Settings
from shared.stack import processes
from shared.stack import up as stack_up
from shared.stack.layout import FUNCTIONS

REPO = Path(__file__).parents[2]
RETRIES = 2  # the Broker's delivery.retry for these tests (production: 5)
# Small pools: the PostgreSQL server may be shared with other stacks (max_connections).
_ENV = {"AUXIP_DB_POOL_MAX": "3", "AUXIP_ROUTER_DB_POOL": "4", "AUXIP_ROUTER_WORKERS": "4"}


@pytest.fixture(scope="package")
def pipeline(stack: stack_up.StackInfo, settings: Settings,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_up.StackInfo]:
    manifests = tmp_path_factory.mktemp("knative") / "base"
    shutil.copytree(REPO / "knative" / "base", manifests)
    broker = manifests / "broker.yaml"
    text = broker.read_text()
    assert "retry: 5" in text and "backoffDelay: PT0.2S" in text
    broker.write_text(text.replace("retry: 5", f"retry: {RETRIES}")
                      .replace("backoffDelay: PT0.2S", "backoffDelay: PT0.1S"))
    os.environ.update(_ENV, AUXIP_KNATIVE_DIR=str(manifests))
    try:
        info = stack_up.up(settings)
    except Exception as error:
        pytest.fail(f"the pipeline did not start: {error}", pytrace=False)
    yield info
    # All at once (one by one, each gunicorn's graceful stop adds up to ~20 s).
    state = info.settings.state_dir
    ours = {"router", *FUNCTIONS}
    processes.stop_many([p for p in processes.tracked(state) if p.name in ours])
    for name in ours:
        processes.stop(state, name)  # gone already: forgets its pid file
    for name in (*_ENV, "AUXIP_KNATIVE_DIR"):
        os.environ.pop(name, None)


@pytest.fixture
def fresh(pipeline: stack_up.StackInfo, clean_buckets: None,
          clean_catalogue: None) -> stack_up.StackInfo:
    return pipeline


def cli() -> typer.Typer:
    """The operator commands as `auxip` mounts them (shared/cli/main.py)."""
    app = typer.Typer(no_args_is_help=True)
    app.add_typer(events.app, name="events")
    app.add_typer(deadletters.app, name="deadletters")
    app.add_typer(products.app, name="products")
    replay.register(app)
    kpi.register(app)
    return app


def query(settings: Settings, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(what: str, done: Callable[[], bool], timeout_s: float = 60.0,
               report: Callable[[], Any] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {report() if report else ''}")


def execute(settings: Settings, sql: str, *params: object) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql, params)
