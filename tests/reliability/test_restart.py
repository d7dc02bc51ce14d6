"""The whole local stack restarted with deliveries in flight: `auxip down`, then `auxip up`,
as a user does after a reboot or to free memory. Every process stops, the S3 server
(Ceph: monitor, OSD, gateway) and clamd included; PostgreSQL too when the stack runs its
own (the machine's server here is shared with other stacks, so it stays up).

Afterwards the same Ceph cluster serves every object (not a new one), every product
published before the restart downloads byte for byte, every rejected file is still in
quarantine under its rejection's key with its reason, the files in flight at the stop are
published exactly once, and the scrub finds catalogue and archive agreeing.

This test stops the session's stack: it runs after the tests that share it (the
`stack_restart` marker), and leaves the stack running again for the ones after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from devstack import demo_products
from devstack.stack import ceph, processes
from devstack.stack.up import StackInfo
from events import types
from shared.adapters import runtime, storage
from shared.pipeline.integrity import scrub
from tests.core import hostile
from tests.reliability import clients, end_state, faults, orbits

pytestmark = [pytest.mark.e2e, pytest.mark.stack_restart, pytest.mark.timeout(600)]

AUXIP = str(Path(sys.executable).parent / "auxip")


def _auxip(*args: str) -> str:
    """The command a user types, in this stack's environment (the session's AUXIP_* and
    the pipeline's knobs are in os.environ)."""
    done = subprocess.run([AUXIP, *args], env=dict(os.environ), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"auxip {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _quarantined(info: StackInfo) -> dict[str, tuple[str, str, str]]:
    """quarantine key -> (name, reason, MD5 of the bytes kept there), per rejection."""
    s = info.settings
    s3 = storage.client(s)
    kept = {}
    for row in end_state.query(s, "SELECT name, reason, quarantine_key FROM rejections"):
        body = storage.get_bytes(s3, s.quarantine_bucket, row["quarantine_key"])
        kept[row["quarantine_key"]] = (row["name"], row["reason"], _md5(body))
    return kept


def test_the_whole_stack_restarted_mid_delivery_loses_nothing(fresh: StackInfo) -> None:
    s = fresh.settings
    state = s.state_dir
    s3 = storage.client(s)
    cluster = json.loads((ceph.folder(state) / "cluster.json").read_text())

    # Published before the restart: orbit files and a SAFE product (served zipped).
    before = orbits.batch(24, epoch=9)
    folder, content = demo_products.aux_safe("A", "AUX_CAL", datetime(2049, 1, 1, tzinfo=UTC),
                                             datetime(2048, 12, 1, tzinfo=UTC), seed=9)
    uploads = dict(before) | {f"{folder}.zip": demo_products.zip_folder(folder, content)}
    for key, body in uploads.items():
        storage.put_bytes(s3, s.inbox_bucket, key, body)
    first = [name for name, _ in before] + [folder]
    end_state.settle(fresh, first, timeout_s=180)
    # Refused files: a virus, a name that is no product, a cut archive.
    refused = {
        "S1A_OPER_AUX_RESORB_OPOD_20491231T000000_V20491230T000000_20491230T030000.EOF":
            hostile.eicar_bytes(),
        "S1A_THIS_IS_NOT_A_PRODUCT.EOF": b"<Earth_Explorer_File/>",
        f"{folder.replace('AUX_CAL', 'AUX_INS')}.zip": uploads[f"{folder}.zip"][:500],
    }
    for key, body in refused.items():
        storage.put_bytes(s3, s.inbox_bucket, key, body)
    end_state.wait_until("3 files quarantined", lambda: len(
        end_state.query(s, "SELECT 1 FROM rejections")) == 3, timeout_s=60)
    quarantined = _quarantined(fresh)
    assert {reason for _, reason, _ in quarantined.values()} == {
        "virus_found", "name_invalid", "archive_corrupt"}
    served = {row["logical_name"]: row for row in end_state.query(
        s, "SELECT id, logical_name, name, checksums FROM products")}

    # A burst, and the stack stopped while the router has its deliveries in flight.
    notification = s3.get_bucket_notification_configuration(Bucket=s.inbox_bucket)
    burst = orbits.batch(80, epoch=10)
    storage_pids = {n: processes.pid(state, n) for n in ceph.DAEMONS}
    uploader = orbits.Uploader(s, burst, threads=8).start()
    uploader.join(120)
    assert uploader.errors == []
    in_flight = faults.in_flight(end_state.session(s), None)
    published_at_stop = end_state.published_count(s, [n for n, _ in burst])
    stopped = _auxip("down")
    assert all(name in stopped for name in (*ceph.DAEMONS, "clamd", "router", "ingest"))
    assert not [p.name for p in processes.tracked(state) if processes.is_alive(state, p.name)]
    for port in (fresh.layout.rgw_port, fresh.layout.ceph_mon_port, fresh.layout.router_port):
        assert not processes.port_open(port), f"port {port} still open after auxip down"
    time.sleep(1.0)

    began = time.monotonic()
    _auxip("up")
    back_in = time.monotonic() - began
    assert json.loads((ceph.folder(state) / "cluster.json").read_text())["fsid"] == \
        cluster["fsid"], "auxip up made a new cluster"
    restarted = {n: processes.pid(state, n) for n in ceph.DAEMONS}
    assert all(restarted.values()) and not set(restarted.values()) & set(storage_pids.values())

    everything = first + [name for name, _ in burst]
    took = end_state.settle(fresh, everything, timeout_s=300)
    print(f"\nstopped with {in_flight} deliveries in flight, {published_at_stop} of "
          f"{len(burst)} burst files published; back up in {back_in:.1f} s; settled "
          f"{took:.1f} s later")
    assert published_at_stop < len(burst), "nothing was in flight: the burst was too small"

    # Events name orbit files by their logical name (a SAFE product's later ones by its zip).
    end_state.assert_published_exactly_once(s, [n for n, _ in before] + [n for n, _ in burst])
    assert end_state.published_count(s, [folder]) == 1
    end_state.assert_nothing_orphaned(s)
    assert _quarantined(fresh) == quarantined
    # The inbox still notifies: a file sent now is announced by RGW's push to the adapter
    # (the sweep's announcement would come from ingest, and only after 20 s).
    after = s3.get_bucket_notification_configuration(Bucket=s.inbox_bucket)
    assert after["TopicConfigurations"] == notification["TopicConfigurations"]
    [(late, body)] = orbits.batch(1, epoch=11)
    storage.put_bytes(s3, s.inbox_bucket, late, body)
    end_state.wait_until("a file sent after the restart published", lambda: (
        end_state.published_count(s, [late]) == 1), timeout_s=60)
    [arrived] = end_state.query(s, "SELECT source FROM event_journal WHERE type = %s"
                                   " AND subject = %s", types.FILE_ARRIVED, late)
    assert arrived["source"].endswith("/inbox-adapter"), arrived
    # Every product published before the restart downloads byte for byte.
    auth = clients.bearer(s, "alice", fresh=True)  # this test runs last: minutes later
    root = clients.prip_root(fresh)
    for name, body in before:
        row = served[name]
        answer = httpx.get(f"{root}/Products({row['id']})/$value", headers=auth, timeout=60)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.content == body, name
    safe = served[folder]
    answer = httpx.get(f"{root}/Products({safe['id']})/$value", headers=auth, timeout=60)
    assert answer.status_code == 200
    assert _md5(answer.content) == next(c["Value"] for c in safe["checksums"]
                                        if c["Algorithm"] == "MD5")
    rt = runtime.build(s.model_copy(update={"broker_url": None}))
    try:
        report = scrub.scrub(rt, full=True, grace_s=0)
    finally:
        rt.close()
    assert report.findings == [], report.findings
    assert report.products == len(everything) + 1  # and the late file
