"""Background processes of the local stack, tracked by pid files under `<state>/run/`.

Every process runs in the foreground of its own session (so its pid is its process group
and a stop reaches its children), detached from the caller's terminal, with stdout and
stderr in `<state>/logs/<name>.log`. A pid file records the process start time as well,
so a recycled pid is never mistaken for (or signalled as) one of ours.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    started: int  # kernel start time of the process, in clock ticks since boot
    order: float  # wall clock when started: stop_all stops in reverse
    stop_signal: int
    stop_timeout: float
    argv: tuple[str, ...]


def run_dir(state: Path) -> Path:
    return state / "run"


def log_path(state: Path, name: str) -> Path:
    return state / "logs" / f"{name}.log"


def _pid_file(state: Path, name: str) -> Path:
    return run_dir(state) / f"{name}.json"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in ticks since boot) of `pid`; None when there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _start_ticks(pid: int) -> int | None:
    """Start time of a live `pid` (field 22 of /proc/pid/stat); None when gone or a zombie."""
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return None
    return stat[1]


def _reap(pid: int) -> None:
    """Collect `pid` if it is our child and has exited (else it would linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def read(state: Path, name: str) -> Tracked | None:
    try:
        data = json.loads(_pid_file(state, name).read_text())
    except (OSError, ValueError):
        return None
    return Tracked(
        name=name,
        pid=data["pid"],
        started=data["started"],
        order=data["order"],
        stop_signal=data["stop_signal"],
        stop_timeout=data["stop_timeout"],
        argv=tuple(data["argv"]),
    )


def tracked(state: Path) -> list[Tracked]:
    """Every process with a pid file, in start order (dead ones included)."""
    folder = run_dir(state)
    if not folder.is_dir():
        return []
    found = [read(state, path.stem) for path in folder.glob("*.json")]
    return sorted((t for t in found if t is not None), key=lambda t: t.order)


def _alive(proc: Tracked) -> bool:
    _reap(proc.pid)
    return _start_ticks(proc.pid) == proc.started


def is_alive(state: Path, name: str) -> bool:
    proc = read(state, name)
    return proc is not None and _alive(proc)


def pid(state: Path, name: str) -> int | None:
    proc = read(state, name)
    return proc.pid if proc is not None and _alive(proc) else None


def start(
    state: Path,
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 10.0,
) -> int:
    """Start `argv` in the background unless `name` already runs; returns its pid.

    `user` (root only) runs it as that user without an intermediate su/runuser, which
    would otherwise be the pid we track and might start a session of its own.
    """
    running = pid(state, name)
    if running is not None:
        return running
    run_dir(state).mkdir(parents=True, exist_ok=True)
    log = log_path(state, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start {' '.join(argv)}\n".encode())
        out.flush()
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
        )
    started = _start_ticks(child.pid)
    if started is None:  # died at once: keep a record so the caller can show the log
        child.wait()
        started = -1
    record = {
        "pid": child.pid,
        "started": started,
        "order": time.time(),
        "stop_signal": int(stop_signal),
        "stop_timeout": stop_timeout,
        "argv": list(argv),
    }
    tmp = _pid_file(state, name).with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(_pid_file(state, name))
    # The Popen object is dropped on purpose: the pid file is the handle from now on,
    # and Python must not reap or warn about the child behind our back.
    child.returncode = 0
    return child.pid


def _signal_group(proc: Tracked, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(proc.pid, sig)


def _group_members(pgid: int) -> list[int]:
    """Live processes still in process group `pgid` (children may outlive the leader)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _gone(proc: Tracked) -> bool:
    return not _alive(proc) and not _group_members(proc.pid)


def _owned(proc: Tracked) -> bool:
    """Whether `proc`'s process group is still ours to signal: its leader runs (or is a
    zombie) with the recorded start time, or its pid is free, so a group with that id can
    only hold the leader's orphans (Linux never hands out a pid that is a live group id)."""
    stat = _stat(proc.pid)
    return stat is None or stat[1] == proc.started


def stop_many(procs: Sequence[Tracked]) -> None:
    """Signal all of `procs` at once, wait for each up to its timeout, then SIGKILL its group."""
    procs = [proc for proc in procs if _owned(proc)]  # never a recycled pid's group
    for proc in procs:
        if _alive(proc):
            _signal_group(proc, proc.stop_signal)
    for proc in procs:
        deadline = time.monotonic() + proc.stop_timeout
        while not _gone(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _gone(proc):
            _signal_group(proc, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while not _gone(proc) and time.monotonic() < deadline:
                time.sleep(0.05)


def stop(state: Path, name: str) -> bool:
    """Stop `name` (and its process group); True when it was running."""
    proc = read(state, name)
    if proc is None:
        return False
    was_alive = _alive(proc)
    stop_many([proc])
    _pid_file(state, name).unlink(missing_ok=True)
    return was_alive


def stop_all(state: Path, waves: Sequence[Sequence[str]] = ()) -> list[str]:
    """Stop every tracked process, newest first; returns the names that were running.

    `waves` are groups of names stopped together, in the given order, before the rest
    (e.g. the functions all at once, then the servers they use).
    """
    procs = tracked(state)
    running = [p.name for p in procs if _alive(p)]
    by_name = {p.name: p for p in procs}
    for wave in waves:
        group = [by_name.pop(n) for n in wave if n in by_name]
        if group:
            stop_many(group)
    for proc in sorted(by_name.values(), key=lambda p: p.order, reverse=True):
        stop_many([proc])
    for proc in procs:
        _pid_file(state, proc.name).unlink(missing_ok=True)
    return running


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status a local server answers a bare GET with; None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as got:  # nosec B310  # own loopback URL
            return int(got.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def require_free_port(port: int, name: str) -> None:
    """Before starting `name`: a port taken by someone else (another stack, a stale daemon)
    would make the readiness check succeed against the wrong server."""
    if port_open(port):
        raise RuntimeError(
            f"cannot start {name}: port {port} is already in use by a process this stack does"
            " not track (another stack on the same AUXIP_PORT_BASE? `ss -ltnp` tells)"
        )
