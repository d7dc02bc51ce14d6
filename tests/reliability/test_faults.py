"""Faults during a 500-file ingest through the whole local pipeline: function processes
killed mid-event and restarted, the S3 server frozen, every database session cut (what a
PostgreSQL restart does to its clients), the event router killed and restarted.

Afterwards every product is published exactly once, the archive holds nothing that is
not a catalogued product's, the inbox is empty (objects whose notification was lost are
announced by the reconcile sweep), and a subscriber was notified of each product with
exactly one delivered notification row per product.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devstack.stack import up as stack_up
from devstack.stack.up import StackInfo
from tests.reliability import clients, end_state, faults, orbits

FILES = 500
FREEZE_S = 5.0

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


def _crash_and_restart(info: StackInfo, name: str, trigger: str | None) -> str:
    s = info.settings
    busy = faults.wait_in_flight(end_state.session(s), trigger)
    faults.crash(s.state_dir, name)
    began = time.monotonic()
    stack_up.up(s)  # restarts what is not running, as an operator (or Kubernetes) would
    return (f"killed {name} with {busy} event(s) in flight; back in "
            f"{time.monotonic() - began:.1f} s")


def _freeze_s3(info: StackInfo) -> str:
    with faults.frozen(info.settings.state_dir, "radosgw"):
        time.sleep(FREEZE_S)
    return f"radosgw stopped for {FREEZE_S:.0f} s"


def _cut_database(info: StackInfo) -> str:
    cut = faults.cut_database_sessions(end_state.session(info.settings))
    assert cut > 0
    # Clients must not pay for sessions that died while pooled: the server is back at once.
    root, auth = clients.prip_root(info), clients.bearer(info.settings, "alice")
    answers = [httpx.get(f"{root}/Products", params={"$top": "1"}, headers=auth, timeout=30)
               for _ in range(12)]
    one = answers[0].json()["value"][0]["Id"]
    answers.append(httpx.get(f"{root}/Products({one})/$value", headers=auth, timeout=30))
    assert [a.status_code for a in answers] == [200] * len(answers)
    return f"{cut} database sessions terminated; prip answered the next 13 requests"


class Operator:
    """What an operator does when products stop moving: replays the dead letters. Only
    events whose consumer could not be reached at all may be among them (a function still
    restarting after the Broker's ~12 s of retries); an HTTP error there is a bug."""

    def __init__(self, info: StackInfo) -> None:
        self.info = info
        self.replayed = 0

    def __call__(self) -> None:
        s = self.info.settings
        letters = end_state.query(s, "SELECT type, subscriber, error FROM dead_letters"
                                     " WHERE replayed_at IS NULL")
        if not letters:
            return
        assert all(letter["error"] is None for letter in letters), letters
        subprocess.run([str(Path(sys.executable).parent / "auxip"), "deadletters", "replay",
                        "--all"], env={**os.environ, **stack_up.env(s)}, check=True,
                       capture_output=True, timeout=120)
        self.replayed += len(letters)


# (products published before the fault, what it does)
FAULTS: list[tuple[int, str, Callable[[StackInfo], str]]] = [
    (40, "ingest", lambda i: _crash_and_restart(i, "ingest", "auxip/ingest-file-arrived")),
    # Orbit files are packaged and published by ingest itself: notify is their next hop.
    (110, "notify", lambda i: _crash_and_restart(i, "notify",
                                                  "auxip/notify-product-published")),
    (180, "s3", _freeze_s3),
    (250, "database", _cut_database),
    (320, "router", lambda i: _crash_and_restart(i, "router", None)),
]


def test_faults_during_a_500_file_ingest(fresh: StackInfo) -> None:
    s = fresh.settings
    files = orbits.batch(FILES, epoch=1)
    names = [name for name, _ in files]
    since = end_state.query(s, "SELECT now()::text AS t")[0]["t"]
    with clients.NotificationSink().serving() as sink:
        clients.subscribe(fresh, "bob", sink.url, "contains(Name,'AUX_RESORB')")
        began = time.monotonic()
        uploads = orbits.Uploader(s, files, per_second=12).start()
        log = []
        for threshold, _, fault in FAULTS:
            end_state.wait_until(f"{threshold} products published",
                                 lambda: end_state.published_count(s, names) >= threshold,
                                 timeout_s=240, every_s=0.2)
            log.append(f"{time.monotonic() - began:5.1f} s, {uploads.done} uploaded: "
                       f"{fault(fresh)}")
        uploads.join(240)
        assert uploads.errors == []
        operator = Operator(fresh)
        took = end_state.settle(fresh, names, timeout_s=300, on_stall=operator)
        end_state.wait_until("every product's notification",
                             lambda: set(names) <= sink.names(), timeout_s=60,
                             report=lambda: len(set(names) - sink.names()))
    print(f"\n{FILES} files through {len(FAULTS)} faults in {time.monotonic() - began:.1f} s"
          f" (settled {took:.1f} s after the last upload):\n  " + "\n  ".join(log))
    print(f"  redelivered events: {end_state.redeliveries(s, since)}; notified twice:"
          f" {len(sink.twice())}; dead letters: "
          f"{end_state.query(s, 'SELECT type, count(*) FROM dead_letters GROUP BY 1')}"
          f" ({operator.replayed} replayed by the operator)")

    end_state.assert_published_exactly_once(s, names)
    end_state.assert_nothing_orphaned(s)
    delivered = end_state.query(
        s, "SELECT p.logical_name, count(*) AS n FROM notifications n JOIN products p"
           " ON p.id = n.product_id WHERE n.status = 'delivered' GROUP BY 1")
    assert {r["logical_name"] for r in delivered} == set(names)
    assert {r["n"] for r in delivered} == {1}
