"""Functions run in-process (functions-framework's own app and test client) against the
test stack's servers, with no broker: the events they emit stay in the journal, and the
test hands each one to the next function itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from devstack.stack import up as stack_up
from shared.adapters import runtime
from shared.adapters.settings import Settings

FUNCTIONS = Path(__file__).parents[3] / "functions"


@pytest.fixture
def function_env(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                 clean_buckets: None, clean_catalogue: None) -> Iterator[None]:
    for name, value in stack_up.env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AUXIP_BROKER_URL")
    monkeypatch.delenv("K_SINK", raising=False)
    runtime.current.cache_clear()
    yield
    runtime.current().close()
    runtime.current.cache_clear()


def client(folder: str, signature: str = "cloudevent") -> FlaskClient:
    return create_app("handle", str(FUNCTIONS / folder / "main.py"), signature).test_client()
