"""Many small, valid orbit files (devstack.demo_products.orbit_eof), and their upload into
the inbox as a producer does it: PUTs from a few threads, RGW's notification doing the rest.

Each batch has its own validity epoch, so the names of one test never meet another's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from devstack import demo_products
from shared.adapters import storage
from shared.adapters.settings import Settings

Orbit = tuple[str, bytes]


def batch(count: int, epoch: int) -> list[Orbit]:
    """`count` AUX_RESORB files of a few hundred bytes; `epoch` (0..59) picks the year."""
    start = datetime(2040 + epoch, 1, 1, tzinfo=UTC)
    files = []
    for i in range(count):
        t = start + timedelta(minutes=100 * i)
        files.append(demo_products.orbit_eof("AB"[i % 2], "AUX_RESORB", t,
                                             t + timedelta(minutes=200),
                                             t + timedelta(minutes=210), max_vectors=2))
    return files


class Uploader:
    """PUTs `files` into the inbox in the background, `threads` at a time, at most
    `per_second` (None: as fast as RGW takes them); `done` counts the objects stored so far.
    A paced upload keeps producers sending while a test injects its faults, so that the
    faults also meet storage notifications in flight."""

    def __init__(self, settings: Settings, files: Sequence[Orbit], threads: int = 4,
                 per_second: float | None = None) -> None:
        self._settings = settings
        self._files = list(files)
        self._threads = threads
        self._per_second = per_second
        self._lock = threading.Lock()
        self.done = 0
        self.errors: list[str] = []
        self._runner = threading.Thread(target=self._run, name="uploader", daemon=True)

    def start(self) -> Uploader:
        self._runner.start()
        return self

    def join(self, timeout_s: float) -> None:
        self._runner.join(timeout_s)
        if self._runner.is_alive():
            raise AssertionError(f"uploads not finished after {timeout_s} s ({self.done} done)")

    def _run(self) -> None:
        client = storage.client(self._settings)
        began = time.monotonic()
        with ThreadPoolExecutor(self._threads) as pool:
            list(pool.map(lambda item: self._put(client, began, *item),
                          enumerate(self._files)))

    def _put(self, client: object, began: float, index: int, item: Orbit) -> None:
        name, body = item
        if self._per_second:
            time.sleep(max(0.0, began + index / self._per_second - time.monotonic()))
        try:
            storage.put_bytes(client, self._settings.inbox_bucket, name, body)
        except Exception as error:  # a producer would retry; the test reports it
            with self._lock:
                self.errors.append(f"{name}: {type(error).__name__}: {error}")
            return
        with self._lock:
            self.done += 1
