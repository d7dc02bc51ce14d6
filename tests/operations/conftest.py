"""Operations against the whole local pipeline (router and every function as processes,
as `make up` runs them), with the Broker's retries shortened so a failing handler reaches
the dead-letter sink in about a second. The processes stop after this package's tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import typer
import yaml

from devstack.stack import up as stack_up
from shared.adapters.settings import Settings
from shared.operations.cli import main
from tests.whole_pipeline import query, running, wait_until  # noqa: F401  (used by the tests)

REPO = Path(__file__).parents[2]
RETRIES = 2  # the Broker's delivery.retry for these tests (production: 5)


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
    # The scheduled scrub (every five minutes, repairing) would bring back behind a test's
    # back what it takes from the archive on purpose; these tests run `verify` themselves.
    sources = manifests / "sources.yaml"
    kept = [doc for doc in yaml.safe_load_all(sources.read_text())
            if doc and doc["metadata"]["name"] != "verify-tick"]
    assert len(kept) == len(list(yaml.safe_load_all(sources.read_text()))) - 1
    sources.write_text(yaml.safe_dump_all(kept, sort_keys=False))
    with running(settings, {"AUXIP_KNATIVE_DIR": str(manifests)}) as info:
        yield info


@pytest.fixture
def fresh(pipeline: stack_up.StackInfo, clean_buckets: None,
          clean_catalogue: None) -> stack_up.StackInfo:
    return pipeline


def cli() -> typer.Typer:
    """`auxip` as a development checkout installs it: the operator commands, pointed at the
    local stack by its installed commands (devstack.commands)."""
    return main.app


def execute(settings: Settings, sql: str, *params: object) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql, params)
