"""Fixtures for the OData tests: a scratch PostgreSQL database, migrated and seeded.

Slow tests (the 1,000,000-row benchmark) only run with `--run-slow` (or ODATA_RUN_SLOW=1).
These tests need only PostgreSQL (ODATA_TEST_SERVER, default 127.0.0.1:5432), not the
whole test stack of tests/conftest.py. Environment names avoid the AUXIP_ prefix: that
conftest clears AUXIP_* variables when it loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from shared.adapters.catalogue.migrations import upgrade
from tests.odata import seed

HERE = Path(__file__).resolve().parent
SERVER = os.environ.get("ODATA_TEST_SERVER", "postgresql://postgres@127.0.0.1:5432")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (the 1M-row benchmark)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running (minutes); needs --run-slow")


def _run_slow(config: pytest.Config) -> bool:
    try:
        flag = config.getoption("--run-slow")
    except ValueError:  # option registered too late (run from another root)
        flag = False
    return bool(flag) or os.environ.get("ODATA_RUN_SLOW") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _run_slow(config):
        return
    # Deselected, not skipped: they are the benchmark `make bench` runs, not a test that
    # could not run here.
    slow = [item for item in items
            if "slow" in item.keywords and HERE in Path(str(item.path)).resolve().parents]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


def fresh_database(name: str) -> str:
    url = f"{SERVER}/{name}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def odata_url() -> str:
    url = fresh_database("auxip_odata_test")
    with psycopg.connect(url) as conn:
        seed.seed(conn)
        conn.execute("ANALYZE products")
    return url


@pytest.fixture(scope="session")
def conn(odata_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(odata_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def rows(conn: psycopg.Connection) -> list[dict]:
    """Every product row as the catalogue returns it (published or not)."""
    return conn.cursor(row_factory=dict_row).execute("SELECT * FROM products").fetchall()
