"""Load: 20 clients query and download over HTTP (each as its own reader, as separate
users are) while 500 files go through the pipeline. Zero errors; the latencies are printed
(p50/p95/max per kind of request), not asserted: this machine is shared and noisy."""

from __future__ import annotations

import hashlib
import random
import statistics
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from devstack.stack.up import StackInfo
from tests.reliability import clients, end_state, orbits
from tests.reliability.conftest import LOAD_USERS

FILES = 500

QUERIES = [
    {"$filter": "contains(Name,'AUX_RESORB')", "$orderby": "PublicationDate desc",
     "$top": "20", "$count": "true"},
    {"$filter": "startswith(Name,'S1A') and contains(Name,'AUX_RESORB') and "
                "ContentDate/Start lt 2047-01-01T00:00:00.000Z and "
                "ContentDate/End gt 2047-01-01T01:00:00.000Z",
     "$orderby": "ContentDate/Start asc", "$top": "1"},
    {"$filter": "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
                "att/OData.CSC.StringAttribute/Value eq 'AUX_RESORB')",
     "$expand": "Attributes", "$top": "50"},
    {"$filter": "PublicationDate ge 2000-01-01T00:00:00Z", "$orderby": "PublicationDate asc",
     "$top": "100", "$skip": "10"},
]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"query": [],
                                                                       "download": []})
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            if error:
                self.errors.append(f"{kind}: {error}")


def _client(info: StackInfo, user: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    root = clients.prip_root(info)
    headers = clients.bearer(info.settings, user)
    with httpx.Client(timeout=60, headers=headers) as http:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                answer = http.get(f"{root}/Products", params=rng.choice(QUERIES))
                error = (None if answer.status_code == 200
                         else f"{answer.status_code} {answer.text[:200]}")
                products = answer.json()["value"] if error is None else []
            except (httpx.HTTPError, ValueError) as exc:
                error, products = f"{type(exc).__name__}: {exc}", []
            tally.add("query", time.perf_counter() - began, error)
            if not products:
                continue
            product = rng.choice(products)
            began = time.perf_counter()
            try:
                body = http.get(f"{root}/Products({product['Id']})/$value")
                md5 = next(c["Value"] for c in product["Checksum"] if c["Algorithm"] == "MD5")
                if body.status_code != 200:
                    error = f"{body.status_code} {body.text[:200]}"
                elif (len(body.content) != product["ContentLength"]
                      or hashlib.md5(body.content, usedforsecurity=False).hexdigest() != md5):
                    error = f"{product['Name']}: wrong bytes"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            tally.add("download", time.perf_counter() - began, error)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_20_clients_query_and_download_during_a_500_file_ingest(fresh: StackInfo) -> None:
    s = fresh.settings
    seed_files = orbits.batch(20, epoch=7)  # something to download from the first second
    orbits.Uploader(s, seed_files).start().join(60)
    end_state.settle(fresh, [name for name, _ in seed_files], timeout_s=120)

    files = orbits.batch(FILES, epoch=8)
    stop, tally = threading.Event(), Tally()
    readers = [threading.Thread(target=_client, args=(fresh, user, stop, tally, n), daemon=True)
               for n, user in enumerate(LOAD_USERS)]
    began = time.monotonic()
    for reader in readers:
        reader.start()
    try:
        uploads = orbits.Uploader(s, files).start()
        uploads.join(300)
        took = end_state.settle(fresh, [name for name, _ in files], timeout_s=400)
    finally:
        stop.set()
        for reader in readers:
            reader.join(90)
    elapsed = time.monotonic() - began

    lines = [f"\n{len(readers)} clients for {elapsed:.1f} s while {FILES} files were published"
             f" ({took:.1f} s after the last upload):"]
    for kind, values in tally.latencies.items():
        lines.append(f"  {kind:8s} n={len(values):5d}"
                     f"  p50={statistics.median(values) * 1000:6.0f} ms"
                     f"  p95={_percentile(values, 0.95) * 1000:6.0f} ms"
                     f"  max={max(values) * 1000:6.0f} ms")
    print("\n".join(lines))
    assert tally.errors == [], tally.errors[:10]
    assert all(len(v) > 0 for v in tally.latencies.values())
    end_state.assert_published_exactly_once(s, [name for name, _ in files])
