"""The local S3 server keeps what it acknowledged: a small Ceph cluster of its own (1 GiB
BlueStore store, on ports past the test stack's) is stopped, killed and restarted in the
ways `auxip down`/`auxip up` and crashes leave it, moved to other ports, grown, filled
until its quota refuses, and a second one filled past its device until its OSD dies, then
brought back.

The session's stack runs the same code (`devstack.stack.ceph.start`, from `up`), so what
holds here holds for the user's stack; tests/reliability/test_restart.py restarts that
whole stack, and test_the_stacks_store_is_bluestore checks which store it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devstack.stack import ceph, processes
from devstack.stack.up import StackInfo
from tests.conftest import PORT_BASE

GiB = 1024**3
MiB = 1024**2
# The S3 user of a throwaway cluster; its secret made afresh each run.
ACCESS = "CEPHTESTKEY"
SECRET = secrets.token_hex(16)
BUCKET = "durable"
# Past the test stack's own ports (functions 1..10, issuer 20, servers 30..33).
RGW, MON = PORT_BASE + 60, PORT_BASE + 61
MOVED_RGW, MOVED_MON = PORT_BASE + 62, PORT_BASE + 63
OTHER_RGW, OTHER_MON = PORT_BASE + 64, PORT_BASE + 65


def _s3(rgw_port: int) -> Any:
    """A client that fails fast: a request waiting on a full or dead OSD shows as an error."""
    return boto3.session.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{rgw_port}", aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(region_name="us-east-1", s3={"addressing_style": "path"},
                      connect_timeout=5, read_timeout=20, retries={"max_attempts": 1},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"))


def _up(state: Path, mon: int = MON, rgw: int = RGW, size: int = GiB) -> ceph.Cluster:
    started = ceph.start(state, mon, rgw, size)
    ceph.ensure_user(state, ACCESS, SECRET, started.quota_bytes)
    return started


def _pids(state: Path) -> dict[str, int | None]:
    return {name: processes.pid(state, name) for name in ceph.DAEMONS}


def _contents(s3: Any) -> dict[str, str]:
    """key -> MD5 of every object in the bucket, read back."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            found[item["Key"]] = hashlib.md5(body).hexdigest()
    return found


def _put(s3: Any, key: str, data: bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def cluster(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 1 GiB cluster with a bucket holding a few objects (the `stack` dependency holds the
    session's lock, so no other session on this tree uses these ports meanwhile)."""
    state = tmp_path_factory.mktemp("ceph")
    try:
        made = _up(state)
        assert made.created and made.started == ceph.DAEMONS
        s3 = _s3(RGW)
        s3.create_bucket(Bucket=BUCKET)
        for size in (0, 1, 4096, 3 * MiB + 7):
            _put(s3, f"first/{size}", os.urandom(size))
        yield state
    finally:
        processes.stop_all(state)


def test_the_stacks_store_is_bluestore(stack: StackInfo) -> None:
    """The session's stack (built by `up`, as a user's is) keeps its objects on disk."""
    state = stack.settings.state_dir
    record = json.loads((ceph.folder(state) / "cluster.json").read_text())
    assert record["objectstore"] == "bluestore"
    answer = subprocess.run(
        ["ceph", "--admin-daemon", str(ceph.folder(state) / "run" / "osd.0.asok"),
         "config", "get", "osd_objectstore"], capture_output=True, text=True, timeout=30)
    assert json.loads(answer.stdout) == {"osd_objectstore": "bluestore"}, answer.stderr
    assert ceph.block_path(state).stat().st_size == record["store_bytes"]


def test_a_clean_restart_keeps_every_object(cluster: Path) -> None:
    s3 = _s3(RGW)
    before = _contents(s3)
    assert len(before) >= 4
    ceph.stop(cluster)
    assert not any(_pids(cluster).values())
    again = _up(cluster)
    assert not again.created and again.started == ceph.DAEMONS
    assert _contents(_s3(RGW)) == before


def test_every_acknowledged_put_survives_the_osd_killed(cluster: Path) -> None:
    """Writers run while the OSD gets SIGKILL; what the server acknowledged before it died
    must be there, byte for byte, once `start` brought the OSD back."""
    s3 = _s3(RGW)
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def writer(n: int) -> None:
        client = _s3(RGW)
        i = 0
        while not stop.is_set():
            key = f"killed/{n}/{i}"
            try:
                acknowledged[key] = _put(client, key, os.urandom(64 * 1024 + i))
            except (ClientError, BotoCoreError):
                return  # the OSD is gone: this PUT was not acknowledged
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    mon, rgw = processes.pid(cluster, "ceph-mon"), processes.pid(cluster, "radosgw")
    osd = processes.read(cluster, "ceph-osd")
    assert osd is not None
    os.kill(osd.pid, signal.SIGKILL)
    time.sleep(0.5)
    try:
        again = _up(cluster)  # the PUTs waiting in the gateway go on once the OSD is back
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert len(acknowledged) >= 40
    assert again.started == ("ceph-osd",)  # the others kept running
    assert (processes.pid(cluster, "ceph-mon"), processes.pid(cluster, "radosgw")) == (mon, rgw)
    found = _contents(s3)
    lost = {k: v for k, v in acknowledged.items() if found.get(k) != v}
    assert not lost, f"{len(lost)} acknowledged objects lost or changed: {sorted(lost)[:5]}"


def test_a_killed_cluster_and_stale_pid_files_come_back(cluster: Path) -> None:
    before = _contents(_s3(RGW))
    for name in ceph.DAEMONS:  # every daemon killed: nothing gets to clean up
        proc = processes.read(cluster, name)
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    # A pid file naming a live process that is not ours (the recorded start time differs).
    record = processes.run_dir(cluster) / "radosgw.json"
    forged = json.loads(record.read_text()) | {"pid": os.getpid(), "started": 1}
    record.write_text(json.dumps(forged))
    again = _up(cluster)
    assert set(again.started) == set(ceph.DAEMONS)
    assert all(_pids(cluster).values())
    assert _contents(_s3(RGW)) == before


def test_the_quota_refuses_at_once_before_the_store_fills(cluster: Path) -> None:
    """A 1 GiB store: PUTs past the quota are refused with QuotaExceeded, quickly and with
    the OSD still serving; deleting gives the room back."""
    made = _up(cluster)
    assert 0 < made.quota_bytes < 0.8 * GiB
    s3 = _s3(RGW)
    chunk = os.urandom(16 * MiB)
    refused = None
    for i in range(2 * GiB // len(chunk)):
        began = time.monotonic()
        try:
            s3.put_object(Bucket=BUCKET, Key=f"fill/{i}", Body=chunk)
        except ClientError as error:
            refused = (error.response["Error"]["Code"], time.monotonic() - began)
            break
    assert refused is not None, "2 GiB went into a 1 GiB store"
    code, seconds = refused
    assert code == "QuotaExceeded"
    assert seconds < 10, f"the refusal took {seconds:.1f} s"
    assert processes.is_alive(cluster, "ceph-osd")
    stored = ceph.stored_bytes(cluster)
    # Checked before each write against what is stored: over by less than one object.
    assert stored is not None and stored <= made.quota_bytes + len(chunk)
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": f"fill/{n}"} for n in range(i)]})
    s3.put_object(Bucket=BUCKET, Key="after-fill", Body=chunk)  # room again
    s3.delete_object(Bucket=BUCKET, Key="after-fill")


def test_another_port_base_keeps_the_cluster(cluster: Path) -> None:
    before = _contents(_s3(RGW))
    moved = _up(cluster, MOVED_MON, MOVED_RGW)
    assert set(moved.started) == set(ceph.DAEMONS)
    assert _contents(_s3(MOVED_RGW)) == before
    back = _up(cluster)  # and back again
    assert set(back.started) == set(ceph.DAEMONS)
    assert _contents(_s3(RGW)) == before


def test_a_size_it_cannot_take_now_is_explained(cluster: Path) -> None:
    """Growing needs the OSD stopped (the full-store test below grows one, and finds that
    a store cannot shrink); meanwhile the store stays as it is and `up` says why."""
    running = _up(cluster, size=2 * GiB)
    assert running.store_bytes == GiB and any("next start" in n for n in running.notes)
    assert ceph.block_path(cluster).stat().st_size == GiB
    with pytest.raises(ceph.CephError, match="at least 1 GiB"):
        _up(cluster, size=GiB // 2)


def test_an_older_memory_store_is_replaced_and_a_full_osd_is_explained(
        stack: StackInfo, tmp_path: Path) -> None:
    """The folder an older auxip left (memory store: nothing in it survived) is replaced by
    a persistent cluster, with a note; that cluster's device then filled past the quota's
    protection (straight through RADOS) kills its OSD, and `start` says why and what to do,
    and starts again once the store is allowed to grow."""
    state = tmp_path
    old = ceph.folder(state)
    (old / "osd.0").mkdir(parents=True)
    (old / "ceph.conf").write_text("[osd]\nosd objectstore = memstore\n")
    try:
        made = _up(state, OTHER_MON, OTHER_RGW)
        assert made.created and any("kept its objects in memory" in n for n in made.notes)
        s3 = _s3(OTHER_RGW)
        s3.create_bucket(Bucket=BUCKET)
        kept = _put(s3, "kept", os.urandom(MiB))
        # Ceph's own full ratios would stop writes short of the end (and leave clients
        # waiting): lifted, so this cluster goes where only a bug or a full disk takes one.
        for ratio in ("set-nearfull-ratio", "set-backfillfull-ratio", "set-full-ratio"):
            _ceph(state, "osd", ratio, "1.0")
        _ceph(state, "osd", "pool", "create", "filler", "8")
        chunk = state / "chunk"
        chunk.write_bytes(os.urandom(64 * MiB))
        conf = str(ceph.conf_path(state))
        for i in range(40):  # 2.5 GiB into 1 GiB: the OSD dies on ENOSPC on the way
            if not processes.is_alive(state, "ceph-osd"):
                break
            subprocess.run(["rados", "-c", conf, "--rados-osd-op-timeout", "20", "-p",
                            "filler", "put", f"f{i}", str(chunk)], capture_output=True,
                           timeout=60)
        deadline = time.monotonic() + 30
        while processes.is_alive(state, "ceph-osd") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes.is_alive(state, "ceph-osd"), "the OSD survived a full device"
        with pytest.raises(ceph.CephError, match="the S3 store is full"):
            _up(state, OTHER_MON, OTHER_RGW)
        grown = _up(state, OTHER_MON, OTHER_RGW, size=4 * GiB)
        assert grown.started == ("ceph-osd",) and grown.store_bytes == 4 * GiB
        assert ceph.block_path(state).stat().st_size == 4 * GiB
        assert grown.quota_bytes > made.quota_bytes
        smaller = _up(state, OTHER_MON, OTHER_RGW, size=2 * GiB)
        assert smaller.store_bytes == 4 * GiB and any("cannot shrink" in n for n in smaller.notes)
        assert hashlib.md5(s3.get_object(Bucket=BUCKET, Key="kept")["Body"].read()
                           ).hexdigest() == kept
    finally:
        processes.stop_all(state)


def _ceph(state: Path, *args: str) -> None:
    subprocess.run(["ceph", "-c", str(ceph.conf_path(state)), *args], check=True,
                   capture_output=True, timeout=60)
