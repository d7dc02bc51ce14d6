"""Single-node Ceph for the local stack: a monitor, one OSD on BlueStore and a RADOS Gateway.

The gateway is the S3 server with real bucket notifications (MinIO has no server package
here). The OSD keeps its objects in BlueStore on a sparse file, `<state>/ceph/osd.0/block`,
so the cluster outlives its processes: the first `up` makes it (mkfs), every later one
starts whichever of its daemons is not running and finds every bucket, object, user and
notification as it was. A daemon killed (even with SIGKILL) comes back with what it
acknowledged: BlueStore and the monitor's RocksDB write ahead. `forget` (`auxip clean`) is
the only thing that deletes the cluster.

Space: BlueStore aborts the OSD when its device is full, and before that Ceph blocks
writes, so a client would wait for ever. The S3 user therefore gets a quota below the
store's size (`quota_bytes`): a PUT past it is refused at once with `QuotaExceeded`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.stack import processes

DAEMONS: tuple[str, ...] = ("ceph-mon", "ceph-osd", "radosgw")
GiB = 1024**3
MiB = 1024**2
# Sparse: the file takes on disk only what is stored, so a large default costs nothing.
DEFAULT_STORE_BYTES = 100 * GiB
MIN_STORE_BYTES = 1 * GiB
# What the quota leaves of the store: BlueFS/RocksDB metadata, deleted objects waiting
# for the gateway's garbage collection, and Ceph's own nearfull/full margins. Measured: a
# 2 GiB store whose OSD ran out of space at 1.72 GiB of objects.
QUOTA_FRACTION = 0.8
QUOTA_RESERVE = 384 * MiB
QUOTA_STEP = 64 * MiB
_RGW_NAME = "client.rgw.auxip"
_OSD_ID = "0"
_RECORD = "cluster.json"
_S3_USER = "auxip"
# SIGTERM lets the OSD unmount BlueStore cleanly (~2 s); SIGKILL after that is safe too
# (its write-ahead log is replayed), only slower to mount. radosgw keeps no state.
STOP_TIMEOUTS = {"ceph-mon": 10.0, "ceph-osd": 20.0, "radosgw": 3.0}
# A gateway request waits at most this long for the OSD (down, or full) before it fails:
# an error, never a client hanging for ever.
_RADOS_OP_TIMEOUT_S = 30


class CephError(RuntimeError):
    pass


@dataclass(frozen=True)
class Cluster:
    """What `start` found and did."""

    created: bool  # made now (mkfs): a new, empty cluster
    started: tuple[str, ...]  # daemons started by this call
    store_bytes: int  # the OSD's device size
    quota_bytes: int  # what the S3 user may store
    notes: list[str] = field(default_factory=list)  # for the operator


def folder(state: Path) -> Path:
    return state / "ceph"


def conf_path(state: Path) -> Path:
    return folder(state) / "ceph.conf"


def block_path(state: Path) -> Path:
    return folder(state) / f"osd.{_OSD_ID}" / "block"


def _conf(root: Path, fsid: str, mon_port: int, rgw_port: int, store_bytes: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}/0
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
# Without these radosgw waits 300 s for a monitor session that never comes.
ms mon client mode = crc secure
ms client mode = crc secure
ms bind ipv6 = false
public addr = 127.0.0.1
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
pid file = {root}/run/$name.pid
keyring = {root}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# One node: map changes need not be batched for a second (radosgw creates ~8 pools at start).
paxos propose interval = 0.05
paxos min wait = 0.01
# The S3 quota keeps the store from filling; the disk under the monitor is the machine's.
mon data avail crit = 0
mon data avail warn = 1
[mon]
mon data = {root}/mon.$id
mon cluster log file = {root}/log/cluster.log
[osd]
osd data = {root}/osd.$id
osd objectstore = bluestore
# The device is a sparse file made at mkfs (grown by `start` when the setting grows).
bluestore block create = true
bluestore block size = {store_bytes}
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mount = false
bluestore cache size = 268435456
# A gateway killed without unwatching keeps its cache watches until this timeout, and every
# metadata change (a topic, a quota) waits for their answer meanwhile: 30 s by default.
osd client watch timeout = 10
[{_RGW_NAME}]
# Without tcp_nodelay every response with a body stalls ~40 ms (delayed ACK).
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {root}/rgw
rados osd op timeout = {_RADOS_OP_TIMEOUT_S}
# Deleted objects keep their space until collected: within minutes, not hours.
rgw gc obj min wait = 120
rgw gc processor period = 60
"""


def _run(argv: list[str], root: Path, timeout: float = 60.0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=root)
    if done.returncode != 0:
        raise CephError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def _ceph(root: Path, *args: str, timeout: float = 30.0) -> str:
    return _run(
        ["ceph", "-c", str(root / "ceph.conf"), "--connect-timeout", "20", *args],
        root,
        timeout,
    )


def running(state: Path) -> bool:
    return all(processes.is_alive(state, name) for name in DAEMONS)


def stop(state: Path) -> None:
    for name in reversed(DAEMONS):
        processes.stop(state, name)


def forget(state: Path) -> bool:
    """Stop the cluster and delete it, every object with it; True when there was one."""
    stop(state)
    root = folder(state)
    existed = root.exists()
    shutil.rmtree(root, ignore_errors=True)
    return existed


def quota_bytes(store_bytes: int, block: Path) -> tuple[int, str | None]:
    """(what the S3 user may store, a note when the disk is the limit rather than the
    setting). The sparse file grows as objects arrive: the disk under it must have room
    for it to reach its size, else BlueStore gets ENOSPC from the file system and aborts."""
    try:
        allocated = block.stat().st_blocks * 512
    except OSError:
        allocated = 0
    disk = shutil.disk_usage(block.parent if block.parent.exists() else Path("/"))
    usable = min(store_bytes, allocated + disk.free)
    # Rounded, so that the free space moving a little does not rewrite the quota each start.
    quota = max(0, int(usable * QUOTA_FRACTION) - QUOTA_RESERVE) // QUOTA_STEP * QUOTA_STEP
    note = None
    if usable < store_bytes / 2:
        note = (f"the disk holding {block} has {disk.free / GiB:.1f} GiB free, less than the "
                f"S3 store's {store_bytes / GiB:.1f} GiB (AUXIP_S3_STORE_BYTES): "
                f"S3 quota {quota / GiB:.1f} GiB")
    return quota, note


def _read_record(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / _RECORD).read_text())
    except (OSError, ValueError):
        return None


def _write_record(root: Path, record: dict[str, Any]) -> None:
    scratch = root / f".{_RECORD}.tmp"
    scratch.write_text(json.dumps(record, indent=2) + "\n")
    scratch.replace(root / _RECORD)


def _legacy(root: Path) -> bool:
    """A cluster of an older auxip: objects in memory, gone once its OSD stopped."""
    try:
        return "osd objectstore = memstore" in (root / "ceph.conf").read_text()
    except OSError:
        return False


_LEGACY_RUNNING = (
    "the running S3 server keeps its objects in memory (made by an older auxip): they are "
    "lost when it stops. `auxip down` then `auxip up` replaces it by the persistent store "
    "(its objects do not move over: upload them again; `auxip products verify` lists the "
    "products whose bytes are missing)")
_LEGACY_REPLACED = (
    "the previous S3 server kept its objects in memory (an older auxip) and lost them when "
    "it stopped; a persistent store replaces it. `auxip products verify` lists the products "
    "whose bytes are missing: upload those files again, or `--repair` fetches them back "
    "from a routing source that still has them")


def start(state: Path, mon_port: int, rgw_port: int, store_bytes: int) -> Cluster:
    """Run the cluster: made the first time, its missing daemons started afterwards."""
    if store_bytes < MIN_STORE_BYTES:
        raise CephError(f"AUXIP_S3_STORE_BYTES={store_bytes}: the S3 store needs at least "
                        f"{MIN_STORE_BYTES // GiB} GiB")
    root = folder(state)
    notes: list[str] = []
    record = _read_record(root)
    if record is None and root.exists():
        if _legacy(root) and running(state):
            quota, _ = quota_bytes(store_bytes, block_path(state))
            return Cluster(False, (), store_bytes, quota, [_LEGACY_RUNNING])
        # An older auxip's memory store (its objects died with its OSD), or a first start
        # cut short before the cluster was recorded (so before anything was stored in it).
        if _legacy(root):
            notes.append(_LEGACY_REPLACED)
        stop(state)
        shutil.rmtree(root)
    started: list[str] = []
    created = record is None
    if record is None:
        record = _create(state, root, mon_port, rgw_port, store_bytes)
        started.append("ceph-mon")
    else:
        notes.extend(_settle(state, root, record, mon_port, rgw_port, store_bytes))
    conf = str(root / "ceph.conf")

    if not processes.is_alive(state, "ceph-mon"):
        processes.require_free_port(mon_port, "ceph-mon")
        # -f: stay in the foreground so the pid we track is the daemon's own.
        processes.start(state, "ceph-mon", ["ceph-mon", "-f", "-c", conf, "-i", "a"],
                        cwd=root, stop_timeout=STOP_TIMEOUTS["ceph-mon"])
        started.append("ceph-mon")
    _wait_port(mon_port, 15.0, state, "ceph-mon")
    if not processes.is_alive(state, "ceph-osd"):
        # The OSD adds itself to the CRUSH map at its first start (osd crush update on start).
        processes.start(state, "ceph-osd", ["ceph-osd", "-f", "-c", conf, "-i", _OSD_ID],
                        cwd=root, stop_timeout=STOP_TIMEOUTS["ceph-osd"])
        started.append("ceph-osd")
        _wait_osd_active(root, state)
    if not processes.is_alive(state, "radosgw"):
        processes.require_free_port(rgw_port, "radosgw")
        processes.start(state, "radosgw", ["radosgw", "-f", "-c", conf, "-n", _RGW_NAME],
                        cwd=root, stop_timeout=STOP_TIMEOUTS["radosgw"])
        started.append("radosgw")
    _wait_http(f"http://127.0.0.1:{rgw_port}/", 60.0, state, "radosgw")
    quota, note = quota_bytes(int(record["store_bytes"]), block_path(state))
    if note:
        notes.append(note)
    return Cluster(created, tuple(dict.fromkeys(started)), int(record["store_bytes"]), quota,
                   notes)


def _create(state: Path, root: Path, mon_port: int, rgw_port: int,
            store_bytes: int) -> dict[str, Any]:
    """mkfs of a new cluster; leaves its monitor running. The record is written last: a
    folder without one was never handed to a client, and is made again."""
    processes.require_free_port(mon_port, "ceph-mon")
    processes.require_free_port(rgw_port, "radosgw")
    for sub in ("run", "log", "mon.a", f"osd.{_OSD_ID}", "rgw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    (root / "ceph.conf").write_text(_conf(root, fsid, mon_port, rgw_port, store_bytes))
    conf = str(root / "ceph.conf")
    _run(["ceph-authtool", "--create-keyring", str(root / "keyring"), "--gen-key",
          "-n", "mon.", "--cap", "mon", "allow *"], root)
    _run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a",
          f"[v2:127.0.0.1:{mon_port}]", str(root / "monmap")], root)
    _run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", str(root / "monmap"),
          "--keyring", str(root / "keyring")], root)
    processes.start(state, "ceph-mon", ["ceph-mon", "-f", "-c", conf, "-i", "a"], cwd=root,
                    stop_timeout=STOP_TIMEOUTS["ceph-mon"])
    _wait_port(mon_port, 15.0, state, "ceph-mon")
    osd_uuid = str(uuid.uuid4())
    osd_id = _ceph(root, "osd", "new", osd_uuid).strip()
    if osd_id != _OSD_ID:
        raise CephError(f"the new cluster numbered its OSD {osd_id}, expected {_OSD_ID}")
    _run(["ceph-osd", "-c", conf, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid], root,
         timeout=120.0)
    record = {"fsid": fsid, "osd_uuid": osd_uuid, "objectstore": "bluestore",
              "store_bytes": store_bytes, "mon_port": mon_port, "rgw_port": rgw_port,
              "created": datetime.now(UTC).isoformat(timespec="seconds")}
    _write_record(root, record)
    return record


def _settle(state: Path, root: Path, record: dict[str, Any], mon_port: int, rgw_port: int,
            store_bytes: int) -> list[str]:
    """An existing cluster made ready for this start: its configuration for the current
    ports and size, the monitor's address moved when the port base changed, the device
    grown when the setting grew. Daemons running with another configuration are stopped."""
    notes = []
    if record["mon_port"] != mon_port:
        stop(state)  # every daemon knows the monitor by its address
        _move_monitor(root, record["fsid"], mon_port)
    elif record["rgw_port"] != rgw_port:
        processes.stop(state, "radosgw")
    wanted = store_bytes
    if wanted > record["store_bytes"]:
        if processes.is_alive(state, "ceph-osd"):
            notes.append(f"the S3 store grows to {wanted / GiB:.1f} GiB at its next start "
                         "(`auxip down`, `auxip up`)")
            wanted = record["store_bytes"]
        else:
            _grow(state, root, wanted)
    elif wanted < record["store_bytes"]:
        notes.append(f"the S3 store cannot shrink: it stays {record['store_bytes'] / GiB:.1f} "
                     f"GiB (AUXIP_S3_STORE_BYTES asks {wanted / GiB:.1f}; `make clean` "
                     "forgets everything and starts again)")
        wanted = record["store_bytes"]
    (root / "ceph.conf").write_text(_conf(root, record["fsid"], mon_port, rgw_port, wanted))
    record.update(mon_port=mon_port, rgw_port=rgw_port, store_bytes=wanted)
    _write_record(root, record)
    return notes


def _move_monitor(root: Path, fsid: str, mon_port: int) -> None:
    """The monitor's map names its address: rewritten for the new port (it is stopped)."""
    monmap = root / "monmap"
    conf = str(root / "ceph.conf")
    _run(["ceph-mon", "-c", conf, "-i", "a", "--extract-monmap", str(monmap)], root)
    _run(["monmaptool", "--rm", "a", str(monmap)], root)
    _run(["monmaptool", "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", str(monmap)], root)
    _run(["ceph-mon", "-c", conf, "-i", "a", "--inject-monmap", str(monmap)], root)


_FSID_LOCK_WAIT_S = 20.0


def _grow(state: Path, root: Path, size: int) -> None:
    """Enlarge the OSD's device (stopped) to `size`: the file first, then BlueStore."""
    block = block_path(state)
    os.truncate(block, size)
    expand = ["ceph-bluestore-tool", "bluefs-bdev-expand", "--path", str(root / f"osd.{_OSD_ID}")]
    deadline = time.monotonic() + _FSID_LOCK_WAIT_S
    while True:
        try:
            _run(expand, root, timeout=300.0)
            return
        except CephError as error:
            # An OSD that just died (a full device) may hold its store's lock a moment
            # longer than its pid lives: seen once in CI. Wait for it, bounded.
            if "_lock_fsid failed" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _admin(root: Path, *args: str) -> str:
    return _run(["radosgw-admin", "-c", str(root / "ceph.conf"), "-n", _RGW_NAME, *args], root)


def ensure_user(state: Path, access_key: str, secret_key: str, quota: int) -> None:
    """The S3 user with the configured keys, at most `quota` bytes stored in all its
    buckets (radosgw-admin is idempotent about both; nothing is written when they hold)."""
    root = folder(state)
    try:
        info = json.loads(_admin(root, "user", "info", f"--uid={_S3_USER}"))
    except CephError:
        info = json.loads(_admin(root, "user", "create", f"--uid={_S3_USER}",
                                 f"--display-name={_S3_USER}", f"--access-key={access_key}",
                                 f"--secret={secret_key}"))
    keys = {(k["access_key"], k["secret_key"]) for k in info.get("keys", [])}
    if (access_key, secret_key) not in keys:
        _admin(root, "user", "modify", f"--uid={_S3_USER}", f"--access-key={access_key}",
               f"--secret={secret_key}")
    held = info.get("user_quota", {})
    if not (held.get("enabled") and held.get("max_size") == quota):
        _admin(root, "quota", "set", "--quota-scope=user", f"--uid={_S3_USER}",
               f"--max-size={quota}", "--max-objects=-1")
        _admin(root, "quota", "enable", "--quota-scope=user", f"--uid={_S3_USER}")


def stored_bytes(state: Path) -> int | None:
    """What the S3 user stores now (the figure its quota is checked against)."""
    try:
        stats = json.loads(_admin(folder(state), "user", "stats", f"--uid={_S3_USER}",
                                  "--sync-stats"))
        return int(stats["stats"]["size_actual"])
    except (CephError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None


def _wait_port(port: int, timeout: float, state: Path, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(state, name)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise CephError(f"{name} not listening on {port} after {timeout:.0f} s{tail(state, name)}")


def _wait_osd_active(root: Path, state: Path, timeout: float = 120.0) -> None:
    """Until the OSD serves: mounted and booted into the map (asked on its admin socket,
    since after a SIGKILL the monitor may still count the previous instance up)."""
    socket_path = root / "run" / f"osd.{_OSD_ID}.asok"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(state, "ceph-osd")
        try:
            status = json.loads(_run(["ceph", "--admin-daemon", str(socket_path), "status"],
                                     root, timeout=10.0))
            if status.get("state") == "active":
                return
        except (CephError, ValueError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.2)
    raise CephError(f"OSD not active after {timeout:.0f} s{tail(state, 'ceph-osd')}")


def _wait_http(url: str, timeout: float, state: Path, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(state, name)
        if processes.http_status(url) is not None:
            return  # any HTTP answer means it serves
        time.sleep(0.1)
    raise CephError(f"{name} not answering {url} after {timeout:.0f} s{tail(state, name)}")


def _check_alive(state: Path, name: str) -> None:
    if not processes.is_alive(state, name):
        if name == "ceph-osd" and _ran_out_of_space(state):
            raise CephError(
                "the S3 store is full: its OSD cannot start (BlueStore out of space). Raise "
                "AUXIP_S3_STORE_BYTES (the store grows at the next `auxip up`) or free disk "
                f"space under {block_path(state).parent}{tail(state, name)}")
        raise CephError(f"{name} exited{tail(state, name)}")


def _ran_out_of_space(state: Path) -> bool:
    """Whether the OSD's last run ended on a full device (its log, since its last start)."""
    log = folder(state) / "log" / f"osd.{_OSD_ID}.log"
    try:
        with log.open("rb") as stream:
            stream.seek(max(0, log.stat().st_size - 8 * MiB))
            text = stream.read().decode(errors="replace")
    except OSError:
        return False
    last_run = text[text.rfind("process ceph-osd, pid"):]
    # BlueStore's words for it, in the data path and in BlueFS (RocksDB's files).
    return any(sign in last_run for sign in (
        "bluefs enospc", "ENOSPC from bluestore", "No space left on device",
        "bluefs _allocate allocation failed", "failed to allocate"))


def tail(state: Path, name: str, lines: int = 30) -> str:
    """The end of a daemon's logs (its stdout and Ceph's own log file) for error messages."""
    logs = [processes.log_path(state, name)]
    own = {"ceph-mon": "mon.a", "ceph-osd": "osd.0", "radosgw": _RGW_NAME}.get(name)
    if own:
        logs.append(folder(state) / "log" / f"{own}.log")
    parts = []
    for log in logs:
        try:
            text = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        parts.append(f"\n--- {log} (last {len(text)} lines)\n" + "\n".join(text))
    return "".join(parts)
