"""Every benchmark on the bench's own stack, one table, and a dated section appended to
bench/RESULTS.md (`make bench`):

    .venv/bin/python bench/run.py [--results PATH] [--no-results] [--files N] [--keep]

Order: the stack comes up, the 1M-row catalogue is seeded when missing (minutes of CPU
that would disturb the benchmarks), then ingest (whose CPU figures choose what to
profile), profile, download, query, cold start and the logging cost run in turn; the
stack is taken down at the end, also on failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (bench/run.py): the repository is the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from bench import cold_start, download, ingest, logging_cost, profile, query, report  # noqa: E402
from bench.figures import Outcome  # noqa: E402
from bench.stack import bench_stack  # noqa: E402


def _dbname(url: str) -> str:
    from psycopg import conninfo

    return str(conninfo.conninfo_to_dict(url).get("dbname"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=report.RESULTS,
                        help="markdown file the dated section is appended to")
    parser.add_argument("--no-results", action="store_true", help="print only")
    parser.add_argument("--files", type=int, default=ingest.FILES)
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()

    started = datetime.now(UTC)
    began = time.monotonic()
    load_before = report.load()
    notes: list[str] = []
    outcomes: list[Outcome] = []
    failures: list[str] = []

    def attempt(name: str, step) -> Outcome | None:  # type: ignore[no-untyped-def]
        # One benchmark failing must not cost the others' figures.
        try:
            outcome = step()
        except Exception:
            failures.append(f"{name} failed:\n{traceback.format_exc()}")
            print(failures[-1], file=sys.stderr, flush=True)
            return None
        outcomes.append(outcome)
        return outcome

    with bench_stack(keep=args.keep) as stack:
        notes.append(f"stack: port base {stack.layout.port_base} (the issue's 48080 lies in the "
                     "kernel's ephemeral port range, which `devstack.stack.up` refuses), database "
                     f"{stack.info.database} ({_dbname(stack.settings.database_url)}), "
                     f"S3 on BlueStore, up in {stack.info.seconds:.0f} s")
        # Seeded before any benchmark: minutes of CPU that would disturb all of them.
        seeded = query.ensure_seeded(query.perf_url(stack))
        if seeded:
            notes.append(f"seeded the 1M-product catalogue first: {seeded:.0f} s")
        ingested = attempt("ingest", lambda: ingest.run(stack, files=args.files))
        cpu = ingested.data.get("cpu_per_file") if ingested else None
        rate = ingested.data.get("rate") if ingested else None
        attempt("profile", lambda: profile.run(stack, cpu_per_file=cpu,  # type: ignore[arg-type]
                                               rate=rate))  # type: ignore[arg-type]
        attempt("download", lambda: download.run(stack))
        attempt("query", lambda: query.run(stack))
        attempt("cold_start", lambda: cold_start.run(stack))
        # In-process, ~20 s; last: it serves prip in this process, with the stack's environment.
        attempt("logging_cost", lambda: logging_cost.run(stack=stack))

    seconds = time.monotonic() - began
    report.print_outcomes(outcomes)
    notes += [f"FAILED: {f.splitlines()[0]} (traceback on stderr)" for f in failures]
    if not args.no_results:
        report.append(args.results, report.section(outcomes, started=started, seconds=seconds,
                                                   load_before=load_before, notes=notes))
        print(f"\nappended to {args.results}")
    print(f"bench: {seconds / 60:.1f} min")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
