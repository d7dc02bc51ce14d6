"""The whole pipeline as processes (router, token issuer, every function, as `make up` runs
them) for the reliability tests, with knobs a fault test needs:

- AUXIP_INBOX_RECONCILE_AGE_S short, so that an object whose storage notification was
  lost (adapter down or failing at PUT time) is announced by the next sweep within the test;
- twenty readers and a subscriber in the local issuer, so that load clients do not share
  one user's download quota;
- smaller connection pools (tests/whole_pipeline.py's, a little larger for prip's load): the
  machine's PostgreSQL (100 sessions) is shared with other stacks and benchmarks, and the
  default pools (8 per function, 12 for the router, 32 for download slots) could together
  take more than what is left of it.

The processes are stopped after this package, so later tests own the ports again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.stack import processes
from devstack.stack import up as stack_up
from functions import FUNCTIONS
from shared.adapters.settings import Settings
from tests.reliability import end_state
from tests.whole_pipeline import running

RECONCILE_AGE_S = 20.0
SAFE_GRACE_S = 2.0
LOAD_USERS = tuple(f"load{i:02d}" for i in range(1, 21))
USERS = ";".join(["alice:alice-pw:reader", "bob:bob-pw:reader,subscriber",
                  "carol:carol-pw:reader,subscriber", "ops:ops-pw:operator",
                  *(f"{u}:{u}-pw:reader" for u in LOAD_USERS)])
PIPELINE_ENV = {
    "AUXIP_INBOX_RECONCILE_AGE_S": str(RECONCILE_AGE_S),
    "AUXIP_SAFE_FOLDER_GRACE_S": str(SAFE_GRACE_S),
    "AUXIP_LOCAL_USERS": USERS,
    "AUXIP_DB_POOL_MAX": "4",
    "AUXIP_ROUTER_DB_POOL": "6",
    "AUXIP_DOWNLOAD_STREAMS_PER_PROCESS": "8",  # gunicorn serves 8 requests at once anyway
}
CLIENT_PROCESSES = ("router", "token-issuer", *FUNCTIONS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a 500-file run (a minute or more); -m 'not slow' leaves them out")


@pytest.fixture(scope="package")
def pipeline(stack: stack_up.StackInfo, settings: Settings) -> Iterator[stack_up.StackInfo]:
    # Another package's pipeline may still run with its own environment: start afresh.
    for name in CLIENT_PROCESSES:
        processes.stop(settings.state_dir, name)
    # `up` hands the caller's AUXIP_* to every process it starts (here and at each restart
    # in a fault test): only the stack's own and ours, not what an earlier package may
    # have left set for its in-process servers (an issuer of its own, say).
    kept = set(stack_up.env(settings)) | {"AUXIP_S3_STORE_BYTES"}
    saved = {k: v for k, v in os.environ.items() if k.startswith("AUXIP_") and k not in kept}
    for name in saved:
        del os.environ[name]
    try:
        with running(settings, PIPELINE_ENV) as info:
            yield info
            end_state.close_sessions()
    finally:
        os.environ.update(saved)


@pytest.fixture
def fresh(pipeline: stack_up.StackInfo, clean_buckets: None,
          clean_catalogue: None) -> stack_up.StackInfo:
    return pipeline
