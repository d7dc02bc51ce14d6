"""Cold-start benchmark: for each function, process start -> first event handled (first
HTTP 200 for prip), and the resident memory of the process that handled it.

Each function is started as the stack starts it (functions-framework, gunicorn, the
stack's environment) on a spare port, and sent the first event it would get in service:
- inbox-adapter: an RGW notification for a fresh orbit file in a bucket of the bench's;
- every function that subscribes to an event type (knative/functions.yaml): the real event
  of that type the previous function emitted. Events go to a sink in this process instead
  of the router, so the chain adapter -> ingest -> package -> publish -> notify/route runs
  on real data without the stack's own functions seeing it;
- functions only driven by a schedule: their PingSource tick, with the schedule's data;
- deadletter: an event as the Broker dead-letters it; prip: `GET Products?$top=1` with a
  reader's token (the first request fetches the issuer's keys, as in service).
The baseline is a function that does nothing (bench/baseline_function), started the same
way: the floor of Python + Flask + gunicorn + functions-framework. Three starts each; the
medians are reported. RSS is the worker's (gunicorn forks it from the master, which
imports the function first; the master's is noted). The worker's log writer process
(shared.adapters.telemetry.log_writer, started by the worker's first log line) has its
RSS in a column and a figure of its own, read once it has started and settled (up to 2 s
after the first response, outside the timed start).

    python -m bench.cold_start [--repeats N] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml
from cloudevents.http import CloudEvent

from bench import procs
from bench.figures import Figure, Outcome, Target, below, median
from bench.ingest import aux_files
from bench.stack import COLD_OFFSET, REPO, SINK_OFFSET, BenchStack, bench_stack
from devstack.stack import processes
from devstack.stack import up as stack_up
from events import bindings
from functions import folder_of
from shared.adapters import storage

REPEATS = 3
TARGET_S = 1.0
TARGET_MB = 80.0
TARGET_WRITER_MB = 15.0
MB = 1e6
COLD_BUCKET = "auxip-bench-cold"
PING = "dev.knative.sources.ping"
BASELINE_SOURCE = REPO / "bench" / "baseline_function" / "main.py"
# Producers before the functions that consume what they emit.
_FIRST = ("inbox-adapter", "ingest", "package", "publish")
_KEPT_HEADERS = ("content-type",)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    what: str = ""


@dataclass(frozen=True)
class Start:
    seconds: float
    worker_rss: int
    master_rss: int
    status: int
    writer_rss: int = 0  # the worker's log writer process, 0 when it logged nothing
    # CPU time master + worker had used at the first response: unlike the wall time, it
    # does not grow with the machine's load (the log writer's and the servers' excluded).
    cpu_s: float = 0.0


class Sink:
    """Stands in for the Broker: keeps the last event of each type the functions send."""

    def __init__(self, host: str, port: int) -> None:
        self.events: dict[str, tuple[dict[str, str], bytes]] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                event = bindings.from_http_request(headers, body)
                sink.events[event["type"]] = (headers, body)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def deployment() -> dict[str, dict]:
    """knative/functions.yaml's entries: what each function subscribes to or is ticked by."""
    path = REPO / "knative" / "functions.yaml"
    if not path.is_file():
        return {}  # then every function gets a ping: still a first request, noted as such
    document = yaml.safe_load(path.read_text()) or {}
    return {name: entry or {} for name, entry in (document.get("functions") or {}).items()}


def _subscribed_types(entry: dict) -> list[str]:
    return [s["type"] if isinstance(s, dict) else str(s) for s in entry.get("subscribes") or []]


def _event_request(event: CloudEvent, what: str, **extra_headers: str) -> Request:
    headers, body = bindings.to_http_binary(event)
    return Request("POST", "/", {**headers, **extra_headers}, body, what)


def _ping(data: object, what: str) -> Request:
    event = CloudEvent({"type": PING, "source": "/apis/v1/namespaces/auxip/pingsources/bench"},
                       data)
    return _event_request(event, what)


def _replay(captured: tuple[dict[str, str], bytes], what: str) -> Request:
    headers, body = captured
    kept = {k: v for k, v in headers.items() if k.startswith("ce-") or k in _KEPT_HEADERS}
    return Request("POST", "/", kept, body, what)


def first_request(service: str, entry: dict, sink: Sink, stack: BenchStack,
                  arrival: tuple[str, int, str]) -> Request | None:
    if service == "prip":
        return Request("GET", "/odata/v1/Products?$top=1",
                       {"Authorization": f"Bearer {stack.token()}"}, what="GET Products?$top=1")
    if service == "inbox-adapter":
        key, size, etag = arrival
        record = {"eventVersion": "2.2", "eventSource": "ceph:s3",
                  "eventName": "ObjectCreated:Put",
                  "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                  "s3": {"bucket": {"name": COLD_BUCKET},
                         "object": {"key": key, "size": size, "eTag": etag}}}
        return Request("POST", "/", {"content-type": "application/json"},
                       json.dumps({"Records": [record]}).encode(), "RGW notification")
    for event_type in _subscribed_types(entry):
        if event_type in sink.events:
            return _replay(sink.events[event_type], event_type.split(".")[-2])
    if service == "deadletter" and sink.events:
        headers, body = next(iter(sink.events.values()))
        request = _replay((headers, body), "dead-lettered event")
        request.headers.update({"ce-knativeerrordest": "http://bench.invalid/",
                                "ce-knativeerrorcode": "500"})
        return request
    schedules = entry.get("schedules") or []
    if schedules:
        raw = schedules[0].get("data") or "{}"
        return _ping(json.loads(raw) if isinstance(raw, str) else raw, "PingSource tick")
    return _ping({}, "ping (no subscription known)")


def _start(stack: BenchStack, name: str, source: Path, target: str, port: int,
           request: Request, env: dict[str, str]) -> Start:
    argv = [str(Path(sys.executable).parent / "functions-framework"), "--source", str(source),
            "--target", target, "--host", stack.layout.host, "--port", str(port)]
    processes.stop(stack.state, name)
    processes.require_free_port(port, name)
    url = f"http://{stack.layout.host}:{port}{request.path}"
    began = time.perf_counter()
    pid = processes.start(stack.state, name, argv, env=env, cwd=REPO, stop_timeout=5.0)
    try:
        with httpx.Client(timeout=60) as client:
            while True:
                try:
                    answer = client.request(request.method, url, headers=request.headers,
                                            content=request.body or None)
                    break
                except httpx.ConnectError:
                    if not processes.is_alive(stack.state, name):
                        raise RuntimeError(f"{name} died{stack_up.log_tail(stack.state, name)}")
                    if time.perf_counter() - began > 60:
                        raise
                    time.sleep(0.005)
        took = time.perf_counter() - began
        worker = procs.worker_of(pid)
        worker_rss, master_rss = procs.rss_bytes(worker), procs.rss_bytes(pid)
        cpu = procs.cpu_seconds(pid) + (procs.cpu_seconds(worker) if worker != pid else 0.0)
        return Start(took, worker_rss, master_rss, answer.status_code, _writer_rss(worker),
                     cpu)
    finally:
        processes.stop(stack.state, name)


def _writer_rss(worker: int) -> int:
    """RSS of the worker's log writer processes once they stopped growing (they start in
    the background after the first line; 0 if none within 2 s)."""
    deadline = time.monotonic() + 2.0
    last = -1
    while time.monotonic() < deadline:
        now = sum(procs.rss_bytes(p) for p in procs.log_writers(worker))
        if now and now == last:
            return now
        last = now
        time.sleep(0.1)
    return max(last, 0)


@contextmanager
def _sink(stack: BenchStack) -> Iterator[Sink]:
    sink = Sink(stack.layout.host, stack.port(SINK_OFFSET))
    try:
        yield sink
    finally:
        sink.close()


def _arrival(stack: BenchStack, rep: int) -> tuple[str, int, str]:
    """A fresh orbit file in the bench's own bucket (no notification: only the cold
    inbox-adapter hears of it)."""
    s3 = storage.client(stack.settings)
    storage.ensure_bucket(s3, COLD_BUCKET)
    f = next(f for f in aux_files(4, seed=100 + rep) if f.key.endswith(".EOF"))
    etag = storage.put_bytes(s3, COLD_BUCKET, f.key, f.body)
    return f.key, len(f.body), etag


def run(stack: BenchStack, *, repeats: int = REPEATS) -> Outcome:
    out = Outcome("cold_start")
    entries = deployment()
    services = stack_up.function_folders()
    order = [s for s in _FIRST if s in services] + [s for s in services if s not in _FIRST]
    starts: dict[str, list[Start]] = {s: [] for s in order}
    whats: dict[str, str] = {}
    base_event: list[Start] = []
    base_http: list[Start] = []
    port = stack.port(COLD_OFFSET)
    with _sink(stack) as sink:
        env = stack.env(AUXIP_BROKER_URL=sink.url)
        for rep in range(repeats):
            base_event.append(_start(stack, "cold-baseline", BASELINE_SOURCE, "handle_event",
                                     port, _ping({}, "ping"), env))
            base_http.append(_start(stack, "cold-baseline", BASELINE_SOURCE, "handle_http",
                                    port, Request("GET", "/", {}), env))
            sink.events.clear()
            arrival = _arrival(stack, rep)
            for service in order:
                request = first_request(service, entries.get(service, {}), sink, stack, arrival)
                if request is None:
                    continue
                whats[service] = request.what
                source = REPO / "functions" / folder_of(service) / "main.py"
                start = _start(stack, f"cold-{service}", source, "handle", port, request, env)
                starts[service].append(start)
                print(f"cold start: {service} {start.seconds:.2f} s ({start.cpu_s:.2f} s "
                      f"CPU), worker RSS {start.worker_rss / MB:.0f} MB, HTTP {start.status}",
                      flush=True)
    storage.delete_prefix(storage.client(stack.settings), COLD_BUCKET)

    event_s, event_rss = median([s.seconds for s in base_event]), median(
        [s.worker_rss / MB for s in base_event])
    http_s, http_rss = median([s.seconds for s in base_http]), median(
        [s.worker_rss / MB for s in base_http])
    event_cpu = median([s.cpu_s for s in base_event])
    http_cpu = median([s.cpu_s for s in base_http])
    rows = ["| function | first request | status | start -> handled (s) | CPU (s) "
            "| worker RSS (MB) | master RSS (MB) | log writer RSS (MB) |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    writers: list[float] = []
    for service, runs in starts.items():
        if not runs:
            continue
        seconds = median([r.seconds for r in runs])
        rss = median([r.worker_rss / MB for r in runs])
        statuses = sorted({r.status for r in runs})
        ok = all(r.status < 300 for r in runs)
        base_s, base_rss = (http_s, http_rss) if service == "prip" else (event_s, event_rss)
        note = "" if ok else f"answered {statuses}: not handled"
        out.figures += [
            Figure("cold_start", f"{service}: start -> first handled", seconds, "s", base_s,
                   (below(seconds if ok else float("nan"), TARGET_S, "< 1 s"),), note=note),
            Figure("cold_start", f"{service}: RSS after", rss, "MB", base_rss,
                   (below(rss, TARGET_MB, "< 80 MB"),)),
        ]
        rows.append(f"| {service} | {whats.get(service, '')} | {', '.join(map(str, statuses))} "
                    f"| {', '.join(f'{r.seconds:.2f}' for r in runs)} "
                    f"| {median([r.cpu_s for r in runs]):.2f} "
                    f"| {', '.join(f'{r.worker_rss / MB:.0f}' for r in runs)} "
                    f"| {median([r.master_rss / MB for r in runs]):.0f} "
                    f"| {median([r.writer_rss / MB for r in runs]):.1f} |")
        writers += [r.writer_rss / MB for r in runs if r.writer_rss]
    if writers:
        writer_mb = median(writers)
        out.figures.append(Figure(
            "cold_start", "log writer process (beside each worker): RSS", writer_mb, "MB",
            targets=(Target(f"<= {TARGET_WRITER_MB:.0f} MB", writer_mb <= TARGET_WRITER_MB),),
            note=f"median of {len(writers)} starts; max {max(writers):.1f} MB"))
    out.details = [
        f"{repeats} starts per function, medians in the table. Baselines (no-op functions "
        f"started the same way): event {event_s:.2f} s ({event_cpu:.2f} s CPU) / "
        f"{event_rss:.0f} MB, HTTP {http_s:.2f} s ({http_cpu:.2f} s CPU) / {http_rss:.0f} MB "
        "(worker RSS). Timed from just before the process is spawned to the end of the "
        "first response; RSS and the CPU time of master + worker (/proc, load-independent) "
        "read right after.",
        "",
        *rows,
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--reuse", action="store_true", help="keep a running bench stack")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()
    from bench import report

    with bench_stack(reuse=args.reuse, keep=args.keep) as stack:
        outcome = run(stack, repeats=args.repeats)
    report.print_outcomes([outcome])


if __name__ == "__main__":
    main()
