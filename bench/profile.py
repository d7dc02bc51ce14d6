"""Profile of the ingest path: py-spy on every hop of the pipeline while a burst of new
files goes through it, and in detail on the function that burnt the most CPU per file in
the ingest burst (bench/ingest.py).

The short table (`hops`): each hop's CPU per file (from /proc, so C code that releases
the GIL counts too) split by what py-spy's GIL samples say the Python part was doing,
by the innermost library frame of each sample (botocore, psycopg, httpx, ...); then the
servers' own CPU per file (clamd, Ceph, PostgreSQL), which auxip only controls through how
many requests it makes.

Two detailed recordings of the chosen function, both without pausing it (`--nonblocking`):
- CPU: samples of the thread holding the GIL (`--gil`), i.e. where Python itself works
  (a thread blocked in a socket call has released it);
- wall: every thread, idle ones too (`--idle`), kept only inside the function's handler,
  so waits on S3, clamd and PostgreSQL show.
Each is summed by the innermost frame of our code (shared/, functions/, events/) and by
the innermost frame of all (the library doing the work).

    python -m bench.profile [--function ingest] [--files N] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import hops
from bench.figures import Outcome
from bench.ingest import aux_files, cpu_snapshot, push
from bench.ingest import cpu_per_file as per_file
from bench.stack import BenchStack, bench_stack
from devstack.stack import up as stack_up
from functions import folder_of

FILES = 300
TOP = 12
RATE_HZ = 100
_OURS = ("shared/", "functions/", "events/")


@dataclass(frozen=True)
class Profile:
    samples: int
    by_ours: list[tuple[str, int]]
    by_leaf: list[tuple[str, int]]


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _frame(text: str) -> tuple[str, str]:
    """("function", "path") of a raw py-spy frame `function (path:line)`."""
    name, _, rest = text.partition(" (")
    return name, rest.rsplit(":", 1)[0]


def summarise(raw: Path, handler_file: str | None) -> Profile:
    """Sum py-spy's collapsed stacks; with `handler_file`, only stacks inside the handler."""
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        # py-spy names a file loaded by path (functions-framework's --source) by its base
        # name only: the handler is the `handle` frame of a main.py.
        if handler_file is not None and not any(
                name == "handle" and path.endswith(Path(handler_file).name)
                for name, path in frames):
            continue
        n = int(count)
        total += n
        mine = [f for f in frames if f[1].startswith(_OURS)]
        if mine:
            name, path = mine[-1]
            ours[f"{path}: {name}"] += n
        name, path = frames[-1]
        leaves[f"{path}: {name}"] += n
    return Profile(total, ours.most_common(TOP), leaves.most_common(TOP))


def pick(cpu_per_file: dict[str, float]) -> str:
    """The function (or the router) with the most CPU per file."""
    candidates = {n: v for n, v in cpu_per_file.items()
                  if n in stack_up.function_folders() or n == stack_up.ROUTER}
    return max(candidates, key=candidates.__getitem__) if candidates else "ingest"


def _table(title: str, profile: Profile) -> list[str]:
    lines = [f"{title} ({profile.samples} samples at {RATE_HZ} Hz):", "",
             "| innermost frame of ours | % | | innermost frame (leaf) | % |",
             "|---|---:|---|---|---:|"]
    for i in range(max(len(profile.by_ours), len(profile.by_leaf))):
        a = profile.by_ours[i] if i < len(profile.by_ours) else ("", 0)
        b = profile.by_leaf[i] if i < len(profile.by_leaf) else ("", 0)
        pa = f"{100 * a[1] / profile.samples:.1f}" if a[0] else ""
        pb = f"{100 * b[1] / profile.samples:.1f}" if b[0] else ""
        lines.append(f"| {a[0]} | {pa} | | {b[0]} | {pb} |")
    return lines


HOPS = ("inbox-adapter", "ingest", "package", "publish", "notify", "route", stack_up.ROUTER)
HOP_RATE_HZ = 50  # seven recorders at once on a small machine: half the detailed rate
SERVERS = ("clamd", "ceph-osd", "radosgw", "ceph-mon", "postgres (backends)")


def _recorder(spy: str, pid: int, duration: int, output: Path, *extra: str,
              rate: int = RATE_HZ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
         "--nonblocking", "--duration", str(duration), *extra, "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(recorders: dict[str, subprocess.Popen[bytes]], duration: int) -> list[str]:
    errors = []
    for name, recorder in recorders.items():
        try:
            _, err = recorder.communicate(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, err = recorder.communicate()
        if recorder.returncode != 0:
            errors.append(f"{name}: {err.decode(errors='replace').strip()[-200:]}")
    return errors


def run(stack: BenchStack, *, function: str | None = None, files: int = FILES,
        cpu_per_file: dict[str, float] | None = None, rate: float | None = None) -> Outcome:
    out = Outcome("profile")
    spy = py_spy()
    if spy is None:
        out.details = ["py-spy is not installed (the dev extra): no profile taken."]
        return out
    chosen = function or pick(cpu_per_file or {})
    worker = stack.worker(chosen)
    handler = None if chosen == stack_up.ROUTER else f"functions/{folder_of(chosen)}/main.py"
    # Long enough for the burst at the rate the ingest benchmark saw, and then some.
    duration = int(math.ceil(files / max(rate or 10.0, 1.0) * 1.5)) + 10
    folder = stack.state / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    cpu_raw, wall_raw = folder / f"{chosen}-cpu.txt", folder / f"{chosen}-wall.txt"
    recorders = {f"{chosen} (cpu)": _recorder(spy, worker, duration, cpu_raw, "--gil")}
    if handler is not None:  # the router has no handler frame: its idle threads say nothing
        recorders[f"{chosen} (wall)"] = _recorder(spy, worker, duration, wall_raw, "--idle")
    hop_raw = {}
    for hop in HOPS:
        if hop == chosen:
            continue
        hop_raw[hop] = folder / f"hop-{hop}.txt"
        pid = stack.pid(hop) if hop == stack_up.ROUTER else stack.worker(hop)
        recorders[hop] = _recorder(spy, pid, duration, hop_raw[hop], "--gil",
                                   rate=HOP_RATE_HZ)
    time.sleep(1.0)  # attached before the first file arrives
    before = cpu_snapshot(stack)
    began = time.monotonic()
    _, published, rejected = push(stack, aux_files(files, seed=3))
    took = time.monotonic() - began
    spent = per_file(before, cpu_snapshot(stack), len(published))
    errors = _finish(recorders, duration)
    if errors or not cpu_raw.exists() or (handler is not None and not wall_raw.exists()):
        out.details = [f"py-spy failed (chosen {chosen}, pid {worker}): {' | '.join(errors)}"]
        return out
    cpu = summarise(cpu_raw, None)
    wall = summarise(wall_raw, handler) if handler is not None else None
    hop_list = []
    for hop in HOPS:
        raw = cpu_raw if hop == chosen else hop_raw[hop]
        fractions, samples = hops.shares(raw, stack_up.REPO)
        hop_list.append(hops.Hop(hop, spent.get(hop, 0.0), fractions, samples))
    auxip = sum(h.cpu_ms for h in hop_list)
    servers = {name: spent.get(name, 0.0) for name in SERVERS}
    why = (f"the most CPU per file in the ingest burst ({cpu_per_file[chosen]:.1f} ms)"
           if cpu_per_file and chosen in cpu_per_file else "chosen on the command line")
    shown = (cpu_raw.relative_to(stack_up.REPO) if cpu_raw.is_relative_to(stack_up.REPO)
             else cpu_raw)
    out.details = [
        f"{files} new files through the pipeline ({len(published)} published, "
        f"{len(rejected)} rejected, {took:.1f} s) with py-spy attached to every hop "
        f"(`--gil --nonblocking`, {HOP_RATE_HZ} Hz; {RATE_HZ} Hz on {chosen}).",
        "",
        "Where each hop's CPU goes (ms per published file; the hop's /proc CPU split by "
        "the library its GIL samples were in):",
        "",
        *hops.table(hop_list),
        "",
        f"auxip's processes together: {auxip:.1f} ms/file (router {spent.get(stack_up.ROUTER, 0.0):.1f},"
        f" a stand-in for Knative's broker); the servers: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in servers.items())
        + f" = {sum(servers.values()):.1f} ms/file.",
        "",
        f"In detail: **{chosen}** ({why}), gunicorn worker pid {worker}. Raw stacks: "
        f"`{shown}`, `-wall.txt` and `hop-*.txt` (py-spy raw format, kept until the next run).",
        "",
        *_table("CPU (the thread holding the GIL)", cpu),
    ]
    if wall is not None:
        out.details += ["", *_table(f"Wall time inside the handler ({handler}, idle included)",
                                    wall)]
    out.data = {"function": chosen, "cpu": cpu, "wall": wall, "hops": hop_list,
                "cpu_per_file": spent}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", default="ingest")
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--reuse", action="store_true", help="keep a running bench stack")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()
    from bench import report

    with bench_stack(reuse=args.reuse, keep=args.keep) as stack:
        if args.reuse:
            from bench.ingest import _truncate_catalogue

            _truncate_catalogue(stack)
        push(stack, aux_files(20, seed=0), rate=10.0)  # warm-up
        outcome = run(stack, function=args.function, files=args.files)
    report.print_outcomes([outcome])


if __name__ == "__main__":
    main()
