"""The figures as one table (console and markdown), and the dated section of
bench/RESULTS.md: when, on what machine, at which commit, what was missed."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import Figure, Outcome

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
_HEADER = ("bench", "figure", "value", "unit", "baseline", "ratio", "target", "met")


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _row(f: Figure) -> tuple[str, ...]:
    ratio = f.ratio
    targets = "; ".join(t.text for t in f.targets)
    verdict = "; ".join(("yes" if t.met else "NO") + (f" ({t.measured})" if t.measured else "")
                        for t in f.targets)
    return (f.bench, f.name, _number(f.value), f.unit, _number(f.baseline),
            f"{ratio:.2f}" if ratio is not None else "-", targets, verdict)


def rows(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    return [_row(f) for o in outcomes for f in o.figures]


def console_table(outcomes: Sequence[Outcome]) -> str:
    body = rows(outcomes)
    widths = [max(len(r[i]) for r in [_HEADER, *body]) for i in range(len(_HEADER))]
    numeric = {2, 4, 5}

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(_HEADER), rule, *(line(r) for r in body)])


def markdown_table(outcomes: Sequence[Outcome]) -> list[str]:
    out = ["| " + " | ".join(_HEADER) + " |",
           "|" + "|".join("---:" if i in (2, 4, 5) else "---" for i in range(len(_HEADER))) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows(outcomes)]
    return out


def missed(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        for f in o.figures:
            for t in f.missed:
                shown = t.measured or f"{_number(f.value)} {f.unit}"
                lines.append(f"{f.bench} / {f.name}: {t.text} missed, measured {shown}")
    return lines


def print_outcomes(outcomes: Sequence[Outcome], *, details: bool = True) -> None:
    print()
    print(console_table(outcomes))
    misses = missed(outcomes)
    print()
    print(f"targets missed: {len(misses)}")
    for line in misses:
        print(f"  - {line}")
    if details:
        for o in outcomes:
            if o.details:
                print(f"\n[{o.bench}]")
                print("\n".join(o.details))


# --- where and when -----------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def commit() -> str:
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in _git("status", "--porcelain").splitlines() if line.strip()]
    if changed:
        return f"{head} + {len(changed)} uncommitted change(s) in the tree"
    return head


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        total_kib = next(int(line.split()[1]) for line in
                         Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal:"))
        memory = f"{total_kib / 1024**2:.1f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    cores = len(os.sched_getaffinity(0))  # what `nproc` prints
    return f"{cores} cores (nproc), {memory}, {cpu}, Linux {platform.release()}"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f}"


def section(outcomes: Sequence[Outcome], *, started: datetime, seconds: float,
            load_before: str, notes: Sequence[str] = ()) -> str:
    misses = missed(outcomes)
    lines = [
        f"## {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}",
        f"- load average (1 / 5 min) at start: {load_before}; at end: {load()} "
        "(the machine is shared: figures are noisy, ratios less so)",
        f"- git commit: {commit()}",
        f"- duration: {seconds / 60:.1f} min (`make bench`)",
        *[f"- {n}" for n in notes],
        "",
        "### Figures",
        "",
        *markdown_table(outcomes),
        "",
        f"### Targets missed ({len(misses)})",
        "",
        *([f"- {m}" for m in misses] or ["- none"]),
    ]
    for o in outcomes:
        if o.details:
            lines += ["", f"### {o.bench}", "", *o.details]
    return "\n".join(lines) + "\n"


def append(path: Path, text: str) -> None:
    fresh = not path.exists() or not path.read_text().strip()
    with open(path, "a") as out:
        if fresh:
            out.write("# Benchmark results\n\nOne section per `make bench` run (bench/run.py):"
                      " every figure beside a baseline measured in the same run, and their"
                      " ratio.\n\n")
        else:
            out.write("\n")
        out.write(text)
