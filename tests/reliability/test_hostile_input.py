"""Hostile input through the running pipeline: archives that escape or explode, XML entity
attacks, empty and truncated files, names that lie, the EICAR test file, names as long as
S3 allows or full of what URL-encoding mangles. Each is PUT into the inbox like any file;
each must end in quarantine with its reason, no function process may fall over, nothing
may be fetched from the network on the attacker's behalf, and a good file sent after them
is published."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack.stack import processes
from devstack.stack.up import StackInfo
from functions import FUNCTIONS
from shared.adapters import storage
from tests.reliability import clients, corpus, end_state, orbits

pytestmark = pytest.mark.e2e


def test_hostile_files_end_in_quarantine_with_their_reason(fresh: StackInfo,
                                                           tmp_path: Path) -> None:
    s = fresh.settings
    s3 = storage.client(s)
    pids = {name: processes.pid(s.state_dir, name) for name in FUNCTIONS}
    with clients.Canary().serving() as canary:
        cases = corpus.build(tmp_path, canary.url)
        objects = [(key, body) for case in cases for key, body in case.objects.items()]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda item: storage.put_bytes(s3, s.inbox_bucket, *item), objects))

        def rejected() -> dict[str, str]:
            return {r["name"]: r["reason"]
                    for r in end_state.query(s, "SELECT name, reason FROM rejections")}

        # An object whose notification went astray is announced by the sweep.
        end_state.sweeping_until(
            fresh, "every hostile file quarantined",
            lambda: sorted(c.label for c in cases if c.name not in rejected()),
            lambda missing: missing == [], timeout_s=180)
        good = orbits.batch(1, epoch=5)
        orbits.Uploader(s, good).start().join(30)
        end_state.settle(fresh, [name for name, _ in good], timeout_s=60)
        assert canary.hits == []

    found = rejected()
    assert {c.label: found.get(c.name) for c in cases} == {c.label: c.reason for c in cases}
    rows = end_state.query(s, "SELECT source_key, quarantine_key FROM rejections")
    for row in rows:  # the bytes are kept, under the key the row says
        assert storage.list_keys(s3, s.quarantine_bucket, row["quarantine_key"])
    assert list(storage.list_keys(s3, s.inbox_bucket)) == []
    hostile_names = [c.name for c in cases] + [key for c in cases for key in c.objects]
    assert end_state.query(s, "SELECT name, logical_name FROM products WHERE name = ANY(%s)"
                              " OR logical_name = ANY(%s)", hostile_names, hostile_names) == []
    assert {name: processes.pid(s.state_dir, name) for name in FUNCTIONS} == pids
