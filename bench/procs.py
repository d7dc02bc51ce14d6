"""What /proc says about a process: memory, CPU time, children. Linux only, like the stack."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size now; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (its own, not its children's)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children(pid: int) -> list[int]:
    """Direct children (gunicorn's worker under the functions-framework master)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children(current)
    return out


LOG_WRITER = "shared.adapters.telemetry.log_writer"  # the module a log writer process runs


def is_log_writer(pid: int) -> bool:
    try:
        return LOG_WRITER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def log_writers(pid: int) -> list[int]:
    """The log writer processes `pid` started (shared.adapters.telemetry.logging)."""
    return [c for c in children(pid) if is_log_writer(c)]


def worker_of(pid: int) -> int:
    """The process that serves requests: gunicorn's (single) worker, else `pid` itself."""
    kids = [c for c in children(pid) if not is_log_writer(c)]
    return kids[0] if kids else pid


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))
