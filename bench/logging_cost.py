"""What logging costs a request: the time of one request with and without 10,000 log
lines per second written by the same process (issue 18: "< 5% of a request's time").

    .venv/bin/python bench/logging_cost.py [--rounds N] [--seconds S] [--prip] [--floor]

(--prip: prip too, without the whole bench stack: only the token issuer on the bench's
ports and the 1M-row catalogue; --floor: the root handler drops every record, so the
figures are what logging's own record costs, whatever the handler does with it.)

Two requests, each in-process (through werkzeug's test client: no network to blur the
figure):
- prip itself (`make bench` passes its stack): functions/prip/main.py served by
  functions-framework as in production, a reader's token, a page of 20 products with their
  attributes from the 1M-row catalogue, i.e. the request the target speaks of;
- a synthetic worst case, always: a Flask handler that only encodes 100 product entities
  (~0.4 ms of pure Python, the GIL held throughout: every microsecond the logging thread
  takes is stolen from it).
Two shapes of 10,000 ECS lines a second from the process, each measured against the same
quiet rounds:
- own share (the target's figure): the request itself logs its share of 10k lines/s, as a
  function's lines come from the requests it serves: N lines a request, N = 10,000 x the
  quiet median request time, timed with the request;
- another thread: a second thread logs 10,000 lines a second (100 every 10 ms) while the
  request runs. This one measures more than logging: any second Python thread waking
  100 times a second delays a request that gives up the GIL at each database round trip
  (with --floor, records dropped at the handler, prip's figure barely moves: it is the
  thread, not what logging does with its lines). Printed for context, no target.
Both go through the very pipeline the functions use (shared.adapters.telemetry.logging:
the record queued by the caller, sent by the writer thread to the log writer process,
which formats and writes) into a file, as a collector would tail it. The writer
process's CPU time is reported beside it (another core's, not the request's). Rounds
alternate quiet / another thread / own share, so a machine whose load drifts weighs on all
alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository is the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import flask  # noqa: E402

from bench.figures import Figure, Outcome, Target  # noqa: E402
from bench.stack import REPO, BenchStack  # noqa: E402
from shared.adapters.telemetry import logging as ecs_logs  # noqa: E402

LINES_PER_S = 10_000
TARGET = 0.05
_BATCH = 100  # lines per tick; ticks every _BATCH / LINES_PER_S seconds

log = logging.getLogger("auxip.bench.request")
noise = logging.getLogger("auxip.bench.load")


def _app() -> flask.Flask:
    app = flask.Flask("logging-cost")
    entities = [{"Id": str(uuid.UUID(int=i)), "Name": f"S1A_AUX_CAL_V2017{i:08d}.SAFE",
                 "ContentType": "application/zip", "ContentLength": 1000 + i,
                 "PublicationDate": "2024-01-01T00:00:00.000Z", "Online": True,
                 "Checksum": [{"Algorithm": "MD5", "Value": f"{i:032x}"}]} for i in range(100)]

    @app.get("/odata/v1/Products")
    def products() -> flask.Response:
        with ecs_logs.bound(event_id="bench", product=entities[0]["Name"]):
            body = json.dumps({"@odata.context": "$metadata#Products", "value": entities})
            log.info("served %d products", len(entities))
        return flask.Response(body, content_type="application/json")

    return app


class _Load:
    """A thread logging LINES_PER_S lines a second, paced, until stopped."""

    def __init__(self) -> None:
        self.lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Load:
        self.began = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self.began

    def _run(self) -> None:
        tick = _BATCH / LINES_PER_S
        due = time.perf_counter()
        while not self._stop.is_set():
            with ecs_logs.bound(event_id="load", product="S1A_AUX_PP2_V20171017T080000.SAFE"):
                for _ in range(_BATCH):
                    noise.info("delivered event %d to %s", self.lines, "publish")
                    self.lines += 1
            due += tick
            pause = due - time.perf_counter()
            if pause > 0:
                self._stop.wait(pause)


_PRIP_QUERY = ("/odata/v1/Products?$filter=Attributes/OData.CSC.StringAttribute/any("
               "att:att/Name eq 'productType' and att/OData.CSC.StringAttribute/Value eq"
               " 'AUX_RESORB')&$orderby=PublicationDate desc&$top=20&$expand=Attributes")


class _Client:
    """One request, the same each time, through a WSGI app's test client."""

    def __init__(self, app: flask.Flask, path: str, headers: dict[str, str]) -> None:
        self.client, self.path, self.headers = app.test_client(), path, headers

    def get(self) -> None:
        answer = self.client.get(self.path, headers=self.headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]


def _requests(client: _Client, seconds: float, log_lines: int = 0) -> list[float]:
    """Request times for `seconds`; with `log_lines`, each request then logs that many
    lines in the same thread, timed with it (the request's own lines)."""
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter()
        client.get()
        for n in range(log_lines):
            log.info("served line %d of %s", n, "the request")
        times.append(time.perf_counter() - began)
    return times


def _prip(stack: BenchStack) -> _Client:
    """prip as functions-framework serves it, on the 1M-row catalogue, in this process."""
    import functions_framework

    from bench import query

    os.environ.update(stack.env(AUXIP_DATABASE_URL=query.perf_url(stack)))
    app = functions_framework.create_app(target="handle",
                                         source=str(REPO / "functions" / "prip" / "main.py"))
    return _Client(app, _PRIP_QUERY, {"Authorization": f"Bearer {stack.token()}"})


def run(rounds: int = 5, seconds: float = 1.0, stack: BenchStack | None = None) -> Outcome:
    out = Outcome("logging_cost")
    clients = {"synthetic": _Client(_app(), "/odata/v1/Products", {})}
    if stack is not None:
        clients = {"prip": _prip(stack), **clients}
    for client in clients.values():
        client.get()  # warm-up; prip's first request also configures its (stderr) logs
    for name, client in clients.items():
        share = _measure(out, name, client, rounds, seconds)
        _floor(out, name, client, rounds, seconds, share)
    return out


def _floor(out: Outcome, name: str, client: _Client, rounds: int, seconds: float,
           share: int) -> None:
    """The own-share figure with every record dropped at the handler: what logging's own
    call (record made, loggers walked) costs before any handler does anything, in the
    same run. No handler behind the stdlib can cost less."""
    handler = ecs_logs.configure("bench", level="INFO", stream=io.StringIO())
    handle = ecs_logs.ChannelHandler.handle
    ecs_logs.ChannelHandler.handle = lambda self, record: True  # type: ignore[method-assign]
    try:
        _requests(client, 0.3)  # warm-up
        quiet: list[float] = []
        own: list[float] = []
        for _ in range(rounds):
            quiet += _requests(client, seconds)
            own += _requests(client, seconds, log_lines=share)
    finally:
        ecs_logs.ChannelHandler.handle = handle  # type: ignore[method-assign]
        logging.getLogger().removeHandler(handler)
        handler.close()
    base, with_own = statistics.median(quiet), statistics.median(own)
    request = "prip" if name == "prip" else "synthetic"
    out.figures.append(Figure(
        "logging_cost", f"{request}: the floor, the same {share} lines a request dropped at"
        " the handler", with_own * 1000, "ms", baseline=base * 1000,
        note=f"{with_own / base - 1:+.1%}: the stdlib logging call alone"))
    out.details.append(
        f"- logging cost ({name}), the floor: median request {base * 1000:.3f} ms quiet,"
        f" {with_own * 1000:.3f} ms logging {share} lines a request that the handler drops"
        f" ({with_own / base - 1:+.1%}): logging's own call, before any handler")


def _measure(out: Outcome, name: str, client: _Client, rounds: int, seconds: float) -> int:
    """The figures of both shapes; the lines a request logged in the own-share one."""
    with tempfile.TemporaryDirectory(prefix="auxip-logging-cost-") as folder:
        path = Path(folder) / "function.log"
        with path.open("a", encoding="utf-8") as sink:
            handler = ecs_logs.configure("bench", level="INFO", stream=sink)
            try:
                _requests(client, 0.3)  # warm-up
                quiet: list[float] = []
                loaded: list[float] = []
                lines = 0
                spent = 0.0
                writer_cpu = _writer_cpu()
                # CPU of this process's other threads than the one serving (the load's and
                # the writer thread's when loaded): what logging holds the GIL for.
                others = {"quiet": [0.0, 0.0], "loaded": [0.0, 0.0]}
                # N lines a request at 10k lines/s: N = 10k x the request's time with its N
                # lines, found in one step from the quiet time.
                share = max(1, round(LINES_PER_S * statistics.median(_requests(client, 0.3))))
                share = max(1, round(LINES_PER_S * statistics.median(
                    _requests(client, 0.3, log_lines=share))))
                own: list[float] = []
                own_lines = 0
                own_spent = 0.0
                for _ in range(rounds):
                    with _others(others["quiet"]):
                        quiet += _requests(client, seconds)
                    with _Load() as load, _others(others["loaded"]):
                        loaded += _requests(client, seconds)
                    lines += load.lines
                    spent += load.seconds
                    began = time.perf_counter()
                    served = _requests(client, seconds, log_lines=share)
                    own_spent += time.perf_counter() - began
                    own_lines += share * len(served)
                    own += served
                ecs_logs.flush_all()
                writer_cpu = _writer_cpu() - writer_cpu
            finally:
                logging.getLogger().removeHandler(handler)
                handler.close()
        written = sum(1 for _ in path.open(encoding="utf-8"))
    (quiet_cpu, quiet_s), (loaded_cpu, loaded_s) = others["quiet"], others["loaded"]
    gil_share = (loaded_cpu - quiet_cpu * loaded_s / quiet_s) / loaded_s
    base = statistics.median(quiet)
    with_load = statistics.median(loaded)
    with_own = statistics.median(own)
    extra = with_load / base - 1
    own_extra = with_own / base - 1
    rate = lines / spent
    own_rate = own_lines / own_spent
    request = ("prip: 20 products + attributes, 1M rows" if name == "prip"
               else "synthetic: 100 entities encoded, GIL-bound")
    out.figures.append(Figure(
        "logging_cost", f"{request}, logging its share of 10k lines/s ({share} a request)",
        with_own * 1000, "ms", baseline=base * 1000,
        targets=(Target(f"< {TARGET:.0%} of a request's time", own_extra < TARGET,
                        measured=f"{own_extra:+.1%}"),),
        note=f"{own_rate:,.0f} lines/s achieved by the requests' own lines"))
    out.figures.append(Figure(
        "logging_cost", f"{request}, another thread logging 10k lines/s", with_load * 1000,
        "ms", baseline=base * 1000,
        note=f"{extra:+.1%} (context: a second Python thread, see --floor); "
             f"{rate:,.0f} lines/s achieved, {written:,} lines written, "
             f"{ecs_logs.dropped()} dropped; logging's threads in this process "
             f"{gil_share:.1%} of a core (CPU time: the GIL they hold); "
             f"the log writer process (another core's) "
             f"{writer_cpu / max(written, 1) * 1e6:.0f} us CPU a line"))
    out.details.append(
        f"- logging cost ({name}): median request {base * 1000:.3f} ms quiet,"
        f" {with_own * 1000:.3f} ms logging its own {share} lines ({own_rate:,.0f} lines/s,"
        f" {own_extra:+.1%}), {with_load * 1000:.3f} ms with another thread logging"
        f" {rate:,.0f} lines/s ({extra:+.1%}); {len(quiet)} + {len(own)} + {len(loaded)}"
        f" requests over {rounds} alternating rounds")
    out.data[name] = {"ratio": with_own / base, "thread_ratio": with_load / base,
                      "rate": own_rate, "thread_rate": rate, "quiet_ms": base * 1000,
                      "own_ms": with_own * 1000, "loaded_ms": with_load * 1000}
    return share


@contextmanager
def _others(into: list[float]) -> Iterator[None]:
    """Adds to `into` the CPU seconds of this process's threads but the calling one, and
    the seconds elapsed."""
    began, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    yield
    into[0] += (time.process_time() - cpu) - (time.thread_time() - own)
    into[1] += time.perf_counter() - began


def _writer_cpu() -> float:
    """CPU seconds of this process's log writer process so far (0 before it started)."""
    from bench import procs

    process = ecs_logs.writer().process
    return procs.cpu_seconds(process.pid) if process is not None else 0.0


@contextmanager
def _issuer_only() -> Iterator[BenchStack]:
    """A BenchStack of the token issuer alone (prip validates real tokens); prip reads the
    1M-row catalogue where bench.query keeps it."""
    from bench import stack as bench_stack
    from devstack.layout import Layout
    from devstack.settings import StackSettings
    from devstack.stack import processes
    from devstack.stack.up import StackInfo

    settings = StackSettings(port_base=bench_stack.PORT_BASE,
                             state_dir=bench_stack.STATE / "issuer-only")
    stack = BenchStack(StackInfo(settings, Layout(settings.port_base), "configured"))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        bench_stack._start_issuer(stack)
        yield stack
    finally:
        processes.stop(settings.state_dir, bench_stack.ISSUER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--prip", action="store_true")
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args()
    if args.floor:
        ecs_logs.ChannelHandler.handle = lambda self, record: True  # type: ignore[method-assign]
    if args.prip:
        with _issuer_only() as stack:
            outcome = run(args.rounds, args.seconds, stack=stack)
    else:
        outcome = run(args.rounds, args.seconds)  # alone: the synthetic request only
    for line in outcome.details:
        print(line)
    for figure in outcome.figures:
        print(f"  {figure.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
