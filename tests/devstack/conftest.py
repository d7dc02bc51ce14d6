"""The local stack's token issuer served from a thread, for its own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.devstack.issuer import RunningIssuer, start_issuer, stop_issuer


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIssuer]:
    running = start_issuer(tmp_path_factory.mktemp("issuer"))
    yield running
    stop_issuer(running)
