"""Ingest benchmark: small aux files through the whole local pipeline.

    PUT into the inbox -> RGW notification -> inbox-adapter -> router -> ingest -> package
    -> publish

Three runs after a warm-up (first requests of a fresh stack build pools and clients):
- burst: 1,000 files PUT as fast as 8 producer threads can -> files per second, from the
  first PUT to the last PublicationDate; the latency of a burst is mostly queueing
  (the last file waits for the 999 before it), so it is printed but held to no target;
- paced: 300 more files offered at 50 files/s (or 80 % of the burst rate when the pipeline
  cannot sustain 50/s) -> PUT-done -> PublicationDate latency p50/p95, and the time each
  stage took (from the event journal);
- baseline: the burst's files again, one S3 PUT plus one catalogue INSERT each, in a
  single-threaded loop: the floor any pipeline pays for storing and cataloguing a file.

The CPU each process of the stack burnt during the burst, per file, says where a 2-core
machine spends itself: `bench/profile.py` profiles the worst function.

    python -m bench.ingest [--files N] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import random
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from bench import procs
from bench.figures import Figure, Outcome, at_least, below, median, percentile
from bench.stack import BenchStack, bench_stack
from devstack import demo_products
from devstack.stack import ceph, processes
from devstack.stack import up as stack_up
from shared.adapters import storage

FILES = 1000
PACED_FILES = 300
WARMUP_FILES = 30
TARGET_RATE = 50.0
TARGET_RATIO = 0.35  # x the loop baseline, in the same run
TARGET_CPU_MS = 25.0  # all processes, per file
PUT_THREADS = 8  # as many as the e2e tests' producers
MIN_BYTES, MAX_BYTES = 10_000, 200_000
BASELINE_BUCKET = "auxip-bench-baseline"
STALL_S = 60.0  # no file published for this long: give up waiting, report what arrived

ARRIVED = "org.auxip.file.arrived.v1"
INGESTED = "org.auxip.product.ingested.v1"
PACKAGED = "org.auxip.product.packaged.v1"
PUBLISHED = "org.auxip.product.published.v1"

# Names hold validity times: one sequence per process keeps every batch's names distinct.
_SEQUENCE = itertools.count()
_EPOCH = datetime(2040, 1, 1, tzinfo=UTC)
_SAFE_TYPES = ("AUX_CAL", "AUX_INS", "AUX_PP1", "AUX_PP2", "AUX_SCS")
# (type, validity, creation after start): what the orbit files of the field look like.
_ORBITS = {
    "AUX_RESORB": (timedelta(minutes=200), timedelta(minutes=210)),
    "AUX_POEORB": (timedelta(hours=26), timedelta(days=20)),
    "AUX_PREORB": (timedelta(hours=6), timedelta(hours=-1)),
}
_EOF_HEADER, _EOF_VECTOR = 1100, 468  # bytes, measured on demo_products.orbit_eof
_SAFE_ZIP_RATIO = 5.0  # uncompressed SAFE payload per zipped byte, measured likewise


@dataclass(frozen=True)
class AuxFile:
    key: str  # inbox key = the published Name (EOF kept plain, SAFE already zipped)
    body: bytes


@dataclass(frozen=True)
class Put:
    key: str
    started: float  # wall clock (time.time): compared with PostgreSQL's timestamps
    done: float


@dataclass(frozen=True)
class Arrival:
    name: str
    logical_name: str
    origin: float
    published: float


def aux_files(count: int, seed: int) -> list[AuxFile]:
    """`count` files of 10-200 KB (log-uniform: small ones are the common case), 60 % orbit
    EOF (RESORB/POEORB/PREORB), 40 % zipped SAFE; names never seen before in this process."""
    rng = random.Random(seed)
    files = []
    for _ in range(count):
        t = _EPOCH + timedelta(hours=3 * next(_SEQUENCE))
        size = math.exp(rng.uniform(math.log(MIN_BYTES), math.log(MAX_BYTES)))
        unit = rng.choice("ABC")
        kind = rng.random()
        if kind < 0.6:
            product_type = "AUX_RESORB" if kind < 0.35 else (
                "AUX_POEORB" if kind < 0.5 else "AUX_PREORB")
            validity, created = _ORBITS[product_type]
            vectors = max(1, int((size - _EOF_HEADER) / _EOF_VECTOR))
            step = max(1, int(validity.total_seconds()) // vectors)
            name, body = demo_products.orbit_eof(unit, product_type, t, t + validity,
                                                  t + created, step_s=step,
                                                  max_vectors=vectors)
            files.append(AuxFile(name, body))
        else:
            product_type = rng.choice(_SAFE_TYPES)
            folder, content = demo_products.aux_safe(
                unit, product_type, t, t - timedelta(days=4),
                payload_bytes=int(size * _SAFE_ZIP_RATIO), seed=rng.randrange(1 << 30))
            files.append(AuxFile(folder + ".zip", demo_products.zip_folder(folder, content)))
    return files


def put_all(stack: BenchStack, files: Sequence[AuxFile], *, bucket: str | None = None,
            rate: float | None = None, threads: int = PUT_THREADS) -> list[Put]:
    """PUT every file (into the inbox by default), as producers do, optionally paced at
    `rate` files per second (an open loop: a slow PUT does not delay the next ones)."""
    s3 = storage.client(stack.settings)
    target = bucket or stack.settings.inbox_bucket
    began = time.monotonic()

    def one(item: tuple[int, AuxFile]) -> Put:
        index, f = item
        if rate:
            delay = began + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        started = time.time()
        storage.put_bytes(s3, target, f.key, f.body)
        return Put(f.key, started, time.time())

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, enumerate(files)))


def wait_published(stack: BenchStack, names: Sequence[str], *, stall_s: float = STALL_S
                   ) -> tuple[dict[str, Arrival], dict[str, str]]:
    """Published products among `names` (by Name) and the rejection reason of the others,
    once all are one or the other, or nothing moved for `stall_s`."""
    wanted = list(names)
    published: dict[str, Arrival] = {}
    rejected: dict[str, str] = {}
    last_change = time.monotonic()
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT name, logical_name, extract(epoch FROM origin_date),"
                " extract(epoch FROM publication_date) FROM products"
                " WHERE status = 'published' AND name = ANY(%s)", (wanted,)).fetchall()
            refused = conn.execute(
                "SELECT name, reason || ': ' || detail FROM rejections WHERE name = ANY(%s)",
                (wanted,)).fetchall()
            if len(rows) + len(refused) > len(published) + len(rejected):
                last_change = time.monotonic()
            published = {r[0]: Arrival(r[0], r[1], float(r[2]), float(r[3])) for r in rows}
            rejected = dict(refused)
            if len(published) + len(rejected) >= len(wanted):
                return published, rejected
            if time.monotonic() - last_change > stall_s:
                return published, rejected
            time.sleep(0.25)


def push(stack: BenchStack, files: Sequence[AuxFile], *, rate: float | None = None
         ) -> tuple[list[Put], dict[str, Arrival], dict[str, str]]:
    puts = put_all(stack, files, rate=rate)
    published, rejected = wait_published(stack, [f.key for f in files])
    return puts, published, rejected


# --- CPU per process ----------------------------------------------------------------------


def _stack_processes(stack: BenchStack) -> dict[str, int]:
    names = [*stack_up.function_folders(), stack_up.ROUTER, *ceph.DAEMONS, stack_up.CLAMD]
    found = {}
    for name in names:
        pid = processes.pid(stack.state, name)
        if pid is not None:
            found[name] = pid
    return found


def _postgres_backends(stack: BenchStack) -> list[int]:
    """Server processes of the bench database's sessions (the pools keep them open)."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()")]


def cpu_snapshot(stack: BenchStack) -> dict[str, float]:
    """CPU seconds used so far by each process (tree) of the stack, and by the PostgreSQL
    backends serving its database (on the machine's shared server: not its other work)."""
    snapshot = {name: procs.tree_cpu_seconds(pid) for name, pid in _stack_processes(stack).items()}
    snapshot["postgres (backends)"] = sum(procs.cpu_seconds(p) for p in _postgres_backends(stack))
    return snapshot


def cpu_per_file(before: dict[str, float], after: dict[str, float], files: int
                 ) -> dict[str, float]:
    """ms of CPU per file, per process, largest first. A backend that closed during the
    run takes its seconds along: the PostgreSQL figure is a floor."""
    spent = {n: max(0.0, after.get(n, 0.0) - before.get(n, 0.0)) for n in after}
    return dict(sorted(((n, 1000 * s / max(files, 1)) for n, s in spent.items()),
                       key=lambda item: -item[1]))


def cpu_shares(cpu: dict[str, float]) -> list[tuple[str, float, str]]:
    """(label, ms per file, note) of the CPU per file split into what auxip controls (its
    functions; the router, a stand-in for Knative's broker), the servers it drives (Ceph,
    PostgreSQL), clamd and the benchmark's own producer."""
    functions = set(stack_up.function_folders())
    servers = (*ceph.DAEMONS, "postgres (backends)")
    groups = [
        ("auxip's functions", sum(v for n, v in cpu.items() if n in functions),
         ", ".join(sorted(n for n, v in cpu.items() if n in functions and v >= 0.5))),
        ("the router (broker)", cpu.get(stack_up.ROUTER, 0.0),
         "devstack's stand-in for Knative's broker"),
        ("the servers", sum(cpu.get(n, 0.0) for n in servers),
         ", ".join(f"{n} {cpu.get(n, 0.0):.1f}" for n in servers)),
        ("clamd", cpu.get(stack_up.CLAMD, 0.0), "the virus scan of every file"),
        ("the benchmark", sum(v for n, v in cpu.items() if n.startswith("bench")),
         "its PUTs (the producers) and polling"),
    ]
    return groups


# --- stages, from the journal -------------------------------------------------------------


_STAGES_SQL = """
SELECT p.name, extract(epoch FROM p.origin_date) AS origin,
  (SELECT extract(epoch FROM min(recorded_at)) FROM event_journal
     WHERE type = %(arrived)s AND subject = p.name) AS arrived,
  (SELECT extract(epoch FROM min(recorded_at)) FROM event_journal
     WHERE type = %(ingested)s AND subject = p.logical_name) AS ingested,
  (SELECT extract(epoch FROM min(recorded_at)) FROM event_journal
     WHERE type = %(packaged)s AND subject = p.name) AS packaged,
  (SELECT extract(epoch FROM min(recorded_at)) FROM event_journal
     WHERE type = %(published)s AND subject = p.name) AS published
FROM products p WHERE p.name = ANY(%(names)s) AND p.status = 'published'
"""

STAGES = (
    ("notification", "origin", "arrived", "RGW event time -> file.arrived journalled"),
    ("ingest", "arrived", "ingested", "file.arrived -> product.ingested (router + ingest)"),
    ("package", "ingested", "packaged", "product.ingested -> product.packaged"),
    ("publish", "packaged", "published", "product.packaged -> product.published"),
)


def stage_times(stack: BenchStack, names: Sequence[str]) -> dict[str, list[float]]:
    """Seconds each published product spent in each stage (router hops included)."""
    with psycopg.connect(stack.settings.database_url, autocommit=True,
                         row_factory=dict_row) as conn:
        rows = conn.execute(_STAGES_SQL, {
            "arrived": ARRIVED, "ingested": INGESTED, "packaged": PACKAGED,
            "published": PUBLISHED, "names": list(names)}).fetchall()
    out: dict[str, list[float]] = {stage: [] for stage, *_ in STAGES}
    for row in rows:
        for stage, start, end, _ in STAGES:
            if row[start] is not None and row[end] is not None:
                out[stage].append(float(row[end]) - float(row[start]))
    return out


def redeliveries(stack: BenchStack) -> tuple[int, int, int]:
    """(deliveries, tried more than once, not delivered) in the router's store: a retry
    waits out the router's backoff, which shows as latency."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        try:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE attempts > 1),"
                " count(*) FILTER (WHERE status <> 'delivered') FROM router.deliveries"
            ).fetchone()
        except psycopg.Error:  # another router schema: the figure is only a diagnostic
            return (0, 0, 0)
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


# --- baseline -----------------------------------------------------------------------------


def baseline(stack: BenchStack, files: Sequence[AuxFile]) -> tuple[float, list[float], float]:
    """(files per second, seconds per file, CPU ms per file) of a loop doing one S3 PUT and
    one catalogue INSERT (autocommit) per file, into a bucket and a table of their own.
    Every value is computed before the loop: it measures storing and cataloguing, nothing
    else. Its CPU: this process, the Ceph daemons and the loop's PostgreSQL backend."""
    s3 = storage.client(stack.settings)
    storage.ensure_bucket(s3, BASELINE_BUCKET)
    now = datetime.now(UTC)
    rows = [(uuid.uuid4(), f.key, f.key, "published", f.key[4:14], f.key[2],
             hashlib.md5(f.body, usedforsecurity=False).hexdigest(), "file", f.key,
             len(f.body), now, now, now, json.dumps({"productType": f.key[4:14]}))
            for f in files]
    insert = ("INSERT INTO bench_baseline (id, logical_name, name, status, product_type,"
              " platform_serial, fingerprint, layout, archive_key, content_length,"
              " content_start, content_end, origin_date, attributes)"
              " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_baseline")
        conn.execute("CREATE TABLE bench_baseline (LIKE products INCLUDING ALL)")
        took = []
        servers = [p for n, p in _stack_processes(stack).items() if n in ceph.DAEMONS]
        backend = conn.info.backend_pid

        def cpu() -> float:
            return (time.process_time() + procs.cpu_seconds(backend)
                    + sum(procs.tree_cpu_seconds(p) for p in servers))

        cpu_before = cpu()
        began = time.perf_counter()
        for f, row in zip(files, rows):
            t0 = time.perf_counter()
            storage.put_bytes(s3, BASELINE_BUCKET, f.key, f.body)
            conn.execute(insert, row)
            took.append(time.perf_counter() - t0)
        rate = len(files) / (time.perf_counter() - began)
        cpu_ms = 1000 * (cpu() - cpu_before) / len(files)
        conn.execute("DROP TABLE bench_baseline")
    storage.delete_prefix(s3, BASELINE_BUCKET)
    return rate, took, cpu_ms


# --- the benchmark ------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> tuple[float, float]:
    return 1000 * percentile(values, 0.5), 1000 * percentile(values, 0.95)


def _truncate_catalogue(stack: BenchStack) -> None:
    """A reused stack: earlier runs' products would collide with this run's names."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'")]
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in tables)))


def run(stack: BenchStack, *, files: int = FILES, paced_files: int = PACED_FILES
        ) -> Outcome:
    out = Outcome("ingest")
    burst_files = aux_files(files, seed=1)
    sizes = [len(f.body) for f in burst_files]
    eof = sum(1 for f in burst_files if f.key.endswith(".EOF"))
    print(f"ingest: {files} files, {sum(sizes) / 1e6:.1f} MB ({min(sizes) / 1e3:.0f}-"
          f"{max(sizes) / 1e3:.0f} KB, median {median(sizes) / 1e3:.0f} KB), {eof} orbit EOF,"
          f" {files - eof} zipped SAFE", flush=True)

    _, warm, _ = push(stack, aux_files(WARMUP_FILES, seed=0), rate=10.0)
    print(f"ingest: warm-up {len(warm)}/{WARMUP_FILES} published", flush=True)

    before = cpu_snapshot(stack)
    before["bench (PUTs, polling)"] = time.process_time()
    wall = time.monotonic()
    puts, published, rejected = push(stack, burst_files)
    wall = time.monotonic() - wall
    after = cpu_snapshot(stack)
    after["bench (PUTs, polling)"] = time.process_time()
    first_put = min(p.started for p in puts)
    put_done = {p.key: p.done for p in puts}
    last_publication = max((a.published for a in published.values()), default=math.nan)
    rate = len(published) / (last_publication - first_put) if published else 0.0
    burst_latency = [a.published - put_done[a.name] for a in published.values()]
    put_rate = len(puts) / (max(p.done for p in puts) - first_put)
    cpu = cpu_per_file(before, after, len(published))
    print(f"ingest: burst {len(published)}/{files} published at {rate:.1f} files/s "
          f"(PUTs at {put_rate:.0f}/s), {len(rejected)} rejected", flush=True)

    base_rate, base_took, base_cpu = baseline(stack, burst_files)
    print(f"ingest: baseline {base_rate:.1f} files/s", flush=True)

    offered = TARGET_RATE if rate >= 1.1 * TARGET_RATE else max(1.0, round(0.8 * rate))
    paced = aux_files(paced_files, seed=2)
    paced_puts, paced_published, paced_rejected = push(stack, paced, rate=offered)
    paced_done = {p.key: p.done for p in paced_puts}
    latency = [a.published - paced_done[a.name] for a in paced_published.values()]
    latency_origin = [a.published - a.origin for a in paced_published.values()]
    stages = stage_times(stack, list(paced_published))
    deliveries, retried, undelivered = redeliveries(stack)
    print(f"ingest: paced at {offered:.0f} files/s: {len(paced_published)}/{paced_files} "
          f"published, p95 {1000 * percentile(latency, 0.95):.0f} ms", flush=True)

    p50, p95 = _ms(latency)
    b50, b95 = _ms(base_took)
    cpu_total = max(sum(cpu.values()), 1e-6)
    cores = _cores()
    burst50, burst95 = _ms(burst_latency)
    ratio = rate / base_rate if base_rate else math.nan
    out.figures += [
        Figure("ingest", f"throughput, burst of {files}", rate, "files/s", base_rate, (
            at_least(rate, TARGET_RATE, ">= 50 files/s"),
            at_least(ratio, TARGET_RATIO, f">= {TARGET_RATIO} x baseline", f"{ratio:.2f} x")),
            note=f"baseline: S3 PUT + INSERT loop, 1 thread; {len(published)}/{files} "
                 f"published, {len(rejected)} rejected"),
        Figure("ingest", "CPU per file, all processes", cpu_total, "ms", base_cpu,
               (below(cpu_total, TARGET_CPU_MS, f"<= {TARGET_CPU_MS:.0f} ms"),),
               note="burst; baseline: the PUT + INSERT loop's CPU (bench, Ceph, backend)"),
        *[Figure("ingest", f"  of which {label}", ms, "ms", note=note)
          for label, ms, note in cpu_shares(cpu)],
        Figure("ingest", f"rate the CPU allows on {cores} idle cores", cores * 1000 / cpu_total,
               "files/s", cores * 1000 / max(base_cpu, 1e-6),
               note="cores / CPU per file: the ceiling on a machine with nothing else"),
        Figure("ingest", f"latency p50, paced {offered:.0f}/s", p50, "ms", b50,
               note="PUT done -> PublicationDate; baseline: one PUT + INSERT"),
        Figure("ingest", f"latency p95, paced {offered:.0f}/s", p95, "ms", b95,
               (below(p95, 2000, "< 2 s"),),
               note=f"{len(paced_published)}/{paced_files} published"),
        Figure("ingest", "latency p50, burst (queueing)", burst50, "ms", b50),
        Figure("ingest", "latency p95, burst (queueing)", burst95, "ms", b95),
    ]
    lines = [
        f"Files: {files} ({sum(sizes) / 1e6:.1f} MB, {min(sizes) / 1e3:.0f}-"
        f"{max(sizes) / 1e3:.0f} KB log-uniform, median {median(sizes) / 1e3:.0f} KB): "
        f"{eof} orbit EOF (AUX_RESORB/POEORB/PREORB), {files - eof} zipped SAFE "
        f"(AUX_CAL/INS/PP1/PP2/SCS), from `devstack.demo_products`. {WARMUP_FILES} warm-up "
        f"files first; PUTs by {PUT_THREADS} threads ran at {put_rate:.0f} files/s.",
        f"Burst wall time {wall:.1f} s; published {len(published)}, rejected "
        f"{len(rejected)}{': ' + '; '.join(list(rejected.values())[:3]) if rejected else ''}.",
        f"Paced run: {paced_files} files offered at {offered:.0f} files/s; latency from the "
        f"catalogue's OriginDate (RGW event time) instead of our PUT: p50 "
        f"{1000 * percentile(latency_origin, 0.5):.0f} ms, p95 "
        f"{1000 * percentile(latency_origin, 0.95):.0f} ms.",
        f"Router deliveries over the whole benchmark: {deliveries}, of which {retried} took "
        f"more than one attempt and {undelivered} are not delivered.",
        "",
        "Time per stage in the paced run (ms; router hops included):",
        "",
        "| stage | from -> to | p50 | p95 |",
        "|---|---|---:|---:|",
    ]
    for stage, _, _, text in STAGES:
        s50, s95 = _ms(stages[stage])
        lines.append(f"| {stage} | {text} | {s50:.0f} | {s95:.0f} |")
    busy = cpu_total * len(published) / 1000
    lines += ["", f"CPU per published file during the burst (ms; all processes together "
                  f"{busy:.0f} CPU-s in {wall:.0f} s wall on {_cores()} cores):", "",
              "| process | CPU ms/file |", "|---|---:|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in cpu.items() if ms >= 0.05]
    out.details = lines
    out.data = {"cpu_per_file": cpu, "stages": {k: median(v) for k, v in stages.items()},
                "rate": rate}
    return out


def _cores() -> int:
    return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--paced-files", type=int, default=PACED_FILES)
    parser.add_argument("--reuse", action="store_true", help="keep a running bench stack")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()
    from bench import report

    with bench_stack(reuse=args.reuse, keep=args.keep) as stack:
        if args.reuse:
            _truncate_catalogue(stack)
        outcome = run(stack, files=args.files, paced_files=args.paced_files)
    report.print_outcomes([outcome])


if __name__ == "__main__":
    main()
