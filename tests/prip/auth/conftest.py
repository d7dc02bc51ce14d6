"""Token issuers for the auth tests: real realms on loopback ports (tests/devstack/issuer.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devstack.issuer import RunningIssuer, start_issuer, stop_issuer


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIssuer]:
    running = start_issuer(tmp_path_factory.mktemp("issuer"))
    yield running
    stop_issuer(running)


@pytest.fixture(scope="session")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIssuer]:
    """Another realm, with its own key: same users, same audience."""
    running = start_issuer(tmp_path_factory.mktemp("other-issuer"))
    yield running
    stop_issuer(running)


@pytest.fixture
def own_issuer(tmp_path: Path) -> Iterator[RunningIssuer]:
    """An issuer a test may reconfigure (rotate keys)."""
    running = start_issuer(tmp_path / "state")
    yield running
    stop_issuer(running)
