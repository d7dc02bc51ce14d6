"""Fault injection on the local stack: crash a process, freeze a server, cut the database.

Each fault is what production sees, done to the processes the stack tracks by pid file:
- `crash`: SIGKILL to the whole process group (a container or pod killed: the gunicorn
  master and its worker go together, nothing gets to clean up);
- `frozen`: SIGSTOP then SIGCONT (a server that stops answering for a while - a GC pause,
  a saturated disk, a network partition - without losing its state; stopping the whole
  stack, Ceph included, is tests/reliability/test_restart.py's);
- `cut_database_sessions`: pg_terminate_backend of every session on the stack's database
  but the caller's, which is what clients see when PostgreSQL restarts or fails over.
  The machine's PostgreSQL serves others too, so it is never restarted itself.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from devstack.stack import processes


class FaultError(RuntimeError):
    pass


def crash(state: Path, name: str, timeout_s: float = 10.0) -> int:
    """SIGKILL `name` and its process group; returns the pid it had. Waits until the group
    is gone, so that a restart finds its port free."""
    pid = processes.pid(state, name)
    if pid is None:
        raise FaultError(f"{name} is not running: nothing to crash")
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if processes.pid(state, name) is None and not _group_alive(pid):
            return pid
        time.sleep(0.05)
    raise FaultError(f"{name} (pid {pid}) still alive {timeout_s} s after SIGKILL")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg: reap ours, then look at what is left.
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return any(_state(pid) not in ("Z", "X", None) for pid in _members(pgid))


def _members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2:].split()[2]) == pgid:
                found.append(int(entry.name))
    return found


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()[0]


@contextmanager
def frozen(state: Path, name: str) -> Iterator[int]:
    """`name` stopped (SIGSTOP) for the duration of the block, then continued - always,
    even when the block fails: a server left stopped would hang every later test."""
    pid = processes.pid(state, name)
    if pid is None:
        raise FaultError(f"{name} is not running: nothing to freeze")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def cut_database_sessions(conn: psycopg.Connection) -> int:
    """Terminate every session on `conn`'s database except `conn` itself (the test's);
    returns how many were cut."""
    rows = conn.cursor(row_factory=tuple_row).execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return sum(1 for (cut,) in rows if cut)


def in_flight(conn: psycopg.Connection, trigger: str | None = None) -> int:
    """Deliveries of `trigger` (e.g. `auxip/ingest-file-arrived`; None: any) the router has
    claimed and not finished: events a subscriber is working on right now."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT count(*) FROM router.deliveries WHERE (trigger = %s OR %s::text IS NULL)"
        " AND status = 'pending' AND claimed_by IS NOT NULL AND next_attempt_at > now()",
        (trigger, trigger)).fetchone()
    return row[0] if row else 0


def wait_in_flight(conn: psycopg.Connection, trigger: str | None,
                   timeout_s: float = 30.0) -> int:
    """Wait until a delivery of `trigger` (None: any) is in flight, so that a crash lands
    mid-event."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = in_flight(conn, trigger)
        if count:
            return count
        time.sleep(0.02)
    raise FaultError(f"no delivery of {trigger} in flight within {timeout_s} s")
