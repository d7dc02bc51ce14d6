"""`python -m audit [STEP ...]` (what `make audit` runs): every check by default, each
outcome printed as it comes, then a summary; exit status 1 when a check failed. A check
that could not run (no vulnerability database) says NOT CHECKED in capitals, and does not
pass."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from audit import licences, sast, sbom, secret_scan, vulnerabilities
from audit.context import FAILED, NOT_CHECKED, Context, Outcome

ROOT = Path(__file__).resolve().parents[1]
STEPS: dict[str, Callable[[Context], Outcome]] = {
    "sbom": sbom.check,
    "licences": licences.check,
    "sast": sast.check,
    "secrets": secret_scan.check,
    "vulnerabilities": vulnerabilities.check,
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m audit", description=__doc__)
    parser.add_argument("steps", nargs="*", metavar="STEP",
                        help=f"checks to run, of {', '.join(STEPS)} (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "audit",
                        help="where the reports go (default: build/audit)")
    parser.add_argument("--tools-venv", type=Path, default=ROOT / ".venv-audit",
                        help="the tools' virtual environment, made when missing "
                             "(default: .venv-audit)")
    parser.add_argument("--runtime-python", type=Path,
                        help="judge this interpreter's environment as it is (default: "
                             ".venv-runtime, made from pyproject.toml's dependencies)")
    parser.add_argument("--vulnerability-service", choices=vulnerabilities.SERVICES,
                        default="pypi", help="the database pip-audit asks (default: pypi)")
    parser.add_argument("--osv-url", help="an OSV API of your own, e.g. a mirror inside the "
                                          "ground segment (implies --vulnerability-service osv)")
    parser.add_argument("--require-vulnerability-db", action="store_true",
                        help="fail, rather than say NOT CHECKED, when no vulnerability "
                             "database answers")
    parser.add_argument("--review-secrets", action="store_true",
                        help="update audit/secrets.baseline and label its new findings "
                             "(interactive), then stop")
    arguments = parser.parse_args(argv)
    unknown = [step for step in arguments.steps if step not in STEPS]
    if unknown:
        parser.error(f"unknown step {', '.join(unknown)}; steps: {', '.join(STEPS)}")
    return arguments


def _run(name: str, context: Context) -> Outcome:
    try:
        return STEPS[name](context)
    except Exception as error:  # a tool that broke fails its check; the others still run
        return Outcome(name, FAILED, f"{type(error).__name__}: {error}")


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    context = Context(root=ROOT, out=arguments.out.resolve(),
                      tools_venv=arguments.tools_venv.resolve(),
                      given_runtime=arguments.runtime_python,
                      vulnerability_service="osv" if arguments.osv_url
                      else arguments.vulnerability_service,
                      osv_url=arguments.osv_url,
                      require_vulnerability_db=arguments.require_vulnerability_db)
    if arguments.review_secrets:
        secret_scan.review(context)
        return 0
    context.out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in arguments.steps or list(STEPS):
        started = time.monotonic()
        outcome = _run(name, context)
        outcomes.append(outcome)
        print(f"audit: {name}: {outcome.status} ({time.monotonic() - started:.1f} s): "
              f"{outcome.summary}", flush=True)
        for line in outcome.details:
            print(f"    {line}", flush=True)
    # For CI and dashboards: every check's status, NOT CHECKED included, in one file.
    (context.out / "summary.json").write_text(json.dumps(
        [dataclasses.asdict(outcome) for outcome in outcomes], indent=1) + "\n")
    print("\naudit summary:")
    for outcome in outcomes:
        print(f"  {outcome.step:<16} {outcome.status}")
    for outcome in outcomes:
        if outcome.status == NOT_CHECKED:
            print(f"\n!!! {outcome.step} {NOT_CHECKED}: {outcome.summary}", file=sys.stderr)
    return 1 if any(outcome.status == FAILED for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
