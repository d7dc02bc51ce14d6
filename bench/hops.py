"""Where each hop of the ingest path spends its CPU: py-spy's GIL samples of every
function's worker (and the router's process) summed by the library that was working, and
scaled by the CPU per file /proc measured for that process over the same burst.

A sample is charged to the innermost frame that belongs to a known library or to our code;
standard-library frames (socket, ssl, json, threading, ...) count for the library that
called them. C code that releases the GIL (hashlib on big buffers, zlib) is not sampled:
its CPU is spread over the categories in proportion, so read the cells as shares of the
hop's /proc figure, not as exact milliseconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# (path prefix after site-packages/ or the repository root, category), first match wins.
_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("shared/adapters/virus_scan", "clamd client (INSTREAM)"),
    ("shared/core/checksums", "checksums (MD5, XXH3)"),
    ("shared/core/metadata", "metadata (XML)"),
    ("shared/core/archive_safety", "archives (zip, tgz)"),
    ("shared/pipeline/packaging", "archives (zip, tgz)"),
    ("shared/adapters/outbox", "outbox (journal, send)"),
    ("shared/adapters/telemetry", "telemetry (spans, logs, metrics)"),
    ("opentelemetry/", "telemetry (spans, logs, metrics)"),
    ("prometheus_client/", "telemetry (spans, logs, metrics)"),
    ("shared/", "auxip code"),
    ("functions/", "auxip code"),
    ("events/", "auxip code"),
    ("devstack/router/", "router code"),
    ("botocore/", "S3 client (botocore, urllib3)"),
    ("boto3/", "S3 client (botocore, urllib3)"),
    ("s3transfer/", "S3 client (botocore, urllib3)"),
    ("urllib3/", "S3 client (botocore, urllib3)"),
    ("psycopg/", "PostgreSQL client (psycopg)"),
    ("psycopg_pool/", "PostgreSQL client (psycopg)"),
    ("httpx/", "HTTP client (httpx)"),
    ("httpcore/", "HTTP client (httpx)"),
    ("h11/", "HTTP client (httpx)"),
    ("gunicorn/", "HTTP server (gunicorn, Flask, CloudEvents SDK)"),
    ("flask/", "HTTP server (gunicorn, Flask, CloudEvents SDK)"),
    ("werkzeug/", "HTTP server (gunicorn, Flask, CloudEvents SDK)"),
    ("functions_framework/", "HTTP server (gunicorn, Flask, CloudEvents SDK)"),
    ("cloudevents/", "HTTP server (gunicorn, Flask, CloudEvents SDK)"),
    ("pydantic/", "pydantic"),
    ("pydantic_core/", "pydantic"),
    ("lark/", "router code"),
    ("zipfile", "archives (zip, tgz)"),
)
OTHER = "other (standard library only)"


@dataclass(frozen=True)
class Hop:
    name: str
    cpu_ms: float  # per file, from /proc
    shares: dict[str, float]  # category -> fraction of the samples
    samples: int


def _relative(path: str, repo: Path) -> str:
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1]
    root = str(repo) + "/"
    return path[len(root):] if path.startswith(root) else path


def category(paths: list[str], repo: Path) -> str:
    """The category of one stack (frames outermost first) by its innermost known frame."""
    for path in reversed(paths):
        relative = _relative(path, repo)
        # functions-framework loads main.py by path: py-spy may name it by its base name.
        if relative == "main.py":
            return "auxip code"
        for prefix, name in _CATEGORIES:
            if relative.startswith(prefix):
                return name
    return OTHER


def shares(raw: Path, repo: Path) -> tuple[dict[str, float], int]:
    """Fractions of the samples per category, and how many samples, of a py-spy raw file."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        paths = []
        for frame in stack.split(";"):
            _, _, rest = frame.partition(" (")
            paths.append(rest.rsplit(":", 1)[0])
        n = int(count)
        total += n
        counts[category(paths, repo)] += n
    return ({k: v / total for k, v in counts.items()} if total else {}), total


def table(hops: list[Hop]) -> list[str]:
    """Rows: categories, largest first; columns: hops; cells: CPU ms per file."""
    cells: dict[str, dict[str, float]] = {}
    for hop in hops:
        for name, share in hop.shares.items():
            cells.setdefault(name, {})[hop.name] = share * hop.cpu_ms
    order = sorted(cells, key=lambda c: -sum(cells[c].values()))
    lines = ["| CPU ms per file | " + " | ".join(h.name for h in hops) + " | all |",
             "|---|" + "---:|" * (len(hops) + 1)]
    for name in order:
        row = [cells[name].get(h.name, 0.0) for h in hops]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" if v >= 0.05 else ""
                                                for v in row) + f" | {sum(row):.1f} |")
    totals = [h.cpu_ms for h in hops]
    lines.append("| **total (/proc)** | " + " | ".join(f"**{v:.1f}**" for v in totals)
                 + f" | **{sum(totals):.1f}** |")
    lines.append("| GIL samples | " + " | ".join(str(h.samples) for h in hops) + " | |")
    return lines
