"""Requests per published file, by kind of product: the SQL statements each process sent
(PostgreSQL's statement log on the bench cluster), the S3 requests radosgw served (its
perf counters) and the router's events and deliveries. Unlike CPU figures, these counts do
not move with the machine's load: they say what a change removed.

    python -m bench.requests [--files N] [--reuse] [--keep]

N orbit EOF files, then N zipped SAFE products, each pushed and published before the
next batch. Statements are charged to the process whose socket holds the session (the
backend's client port, looked up in /proc); the benchmark's own polling is left out. The S3
counts include the benchmark's own PUT of each file (one request).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import psycopg

from bench import ingest, procs
from bench.stack import BenchStack, bench_stack

_LOGGED = re.compile(r"^(\d+)\|.*LOG:  (?:statement|execute [^:]*): (.*)$")
_OWN = ("pg_stat_activity", "FROM router.events", "FROM router.deliveries")


def _socket_owners(stack: BenchStack) -> dict[str, str]:
    """socket inode -> the stack process (tree) that holds it."""
    owners = {}
    for name, pid in ingest._stack_processes(stack).items():
        for member in procs.tree(pid):
            for fd in glob.glob(f"/proc/{member}/fd/*"):
                try:
                    link = os.readlink(fd)
                except OSError:
                    continue
                if link.startswith("socket:["):
                    owners[link[8:-1]] = name
    return owners


def _port_inodes() -> dict[int, str]:
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            found.setdefault(int(fields[1].rsplit(":", 1)[1], 16), fields[9])
    return found


def backend_owners(stack: BenchStack) -> dict[int, str]:
    """PostgreSQL backend pid -> the stack process whose session it serves."""
    owners, inodes = _socket_owners(stack), _port_inodes()
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid, client_port FROM pg_stat_activity"
                            " WHERE datname = current_database()").fetchall()
    return {pid: owners.get(inodes.get(port, ""), "?") for pid, port in rows if port}


def rgw_requests(stack: BenchStack) -> Counter[str]:
    """radosgw's request counters (req, get, put, ...), from its admin socket."""
    for sock in glob.glob(str(stack.state / "ceph" / "run" / "*.asok")):
        done = subprocess.run(["ceph", "--admin-daemon", sock, "perf", "dump"],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and '"rgw"' in done.stdout:
            counters = json.loads(done.stdout)["rgw"]
            return Counter({k: v for k, v in counters.items()
                            if isinstance(v, int) and k in ("req", "get", "put", "copy_obj_ops")})
    return Counter()


def _router_counts(stack: BenchStack) -> Counter[str]:
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        events = conn.execute("SELECT count(*) FROM router.events").fetchone()
        deliveries = conn.execute("SELECT count(*) FROM router.deliveries").fetchone()
    return Counter({"events": events[0] if events else 0,
                    "deliveries": deliveries[0] if deliveries else 0})


def measure(stack: BenchStack, files: Sequence[ingest.AuxFile], log: Path) -> dict:
    owners = backend_owners(stack)
    router, rgw = _router_counts(stack), rgw_requests(stack)
    start = log.stat().st_size
    ingest.push(stack, files)
    time.sleep(2)  # the last file's notify and route
    owners.update(backend_owners(stack))
    router = _router_counts(stack) - router
    rgw = rgw_requests(stack) - rgw
    with log.open("rb") as stream:
        stream.seek(start)
        lines = stream.read().decode(errors="replace").splitlines()
    statements: Counter[str] = Counter()
    for line in lines:
        found = _LOGGED.match(line)
        if found and not any(mark in found.group(2) for mark in _OWN):
            statements[owners.get(int(found.group(1)), "?")] += 1
    # The benchmark's own polling opens a session per query: never a stack process's.
    del statements["?"]
    n = len(files)
    return {"statements": {k: v / n for k, v in sorted(statements.items())},
            "s3": {k: v / n for k, v in rgw.items()},
            "router": {k: v / n for k, v in router.items()}}


def _statement_log(stack: BenchStack, on: bool) -> None:
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        if on:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("ALTER SYSTEM SET log_line_prefix = '%p|'")
        else:
            conn.execute("ALTER SYSTEM RESET log_statement")
            conn.execute("ALTER SYSTEM RESET log_line_prefix")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=30, help="per kind of product")
    parser.add_argument("--reuse", action="store_true", help="keep a running bench stack")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()
    with bench_stack(reuse=args.reuse, keep=args.keep) as stack:
        drawn = ingest.aux_files(6 * args.files, seed=int(time.time()))
        batches = {"orbit EOF": [f for f in drawn if not f.key.endswith(".zip")][:args.files],
                   "zipped SAFE": [f for f in drawn if f.key.endswith(".zip")][:args.files]}
        ingest.push(stack, ingest.aux_files(10, seed=1))  # pools, clients, first requests
        _statement_log(stack, True)
        try:
            results = {kind: measure(stack, files, stack.state / "logs" / "postgres.log")
                       for kind, files in batches.items()}
        finally:
            _statement_log(stack, False)
    for kind, result in results.items():
        statements = result["statements"]
        print(f"{kind}: {sum(statements.values()):.1f} SQL statements per file ("
              + ", ".join(f"{k} {v:.1f}" for k, v in statements.items() if v >= 0.05) + ");"
              f" S3 requests {dict((k, round(v, 2)) for k, v in result['s3'].items())};"
              f" router {dict((k, round(v, 2)) for k, v in result['router'].items())}")


if __name__ == "__main__":
    main()
