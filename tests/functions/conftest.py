"""Functions served by functions-framework's own app, configured like the local stack
configures them (AUXIP_* environment), against the test stack's real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from devstack.stack import up as stack_up
from shared.adapters import runtime
from shared.adapters.settings import Settings

FUNCTIONS = Path(__file__).parents[2] / "functions"


@pytest.fixture
def function_env(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                 clean_buckets: None, clean_catalogue: None) -> Iterator[None]:
    for name, value in stack_up.env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AUXIP_BROKER_URL")  # events stay in the journal for the test to read
    monkeypatch.delenv("K_SINK", raising=False)
    runtime.current.cache_clear()
    yield
    runtime.current().close()
    runtime.current.cache_clear()


def client(folder: str, signature: str) -> FlaskClient:
    app = create_app("handle", str(FUNCTIONS / folder / "main.py"), signature)
    return app.test_client()
