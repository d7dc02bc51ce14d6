"""Known vulnerabilities in what the image ships, by pip-audit against a vulnerability
database: PyPI's (the default) or OSV's. This check needs the internet. pip-audit passes
silently when the database cannot be reached (a package it cannot look up is skipped), so
the database is first asked about a release known to be vulnerable, the canary: if that
comes back clean, nothing was checked, and the outcome says NOT CHECKED instead of
passing (a failure with --require-vulnerability-db). Once the canary is answered, every
package must be: one the database cannot audit fails the check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from audit.context import FAILED, NOT_CHECKED, PASSED, Context, Outcome

# requests 2.25.0: GHSA-j8r2-6x86-q33q (CVE-2023-32681) and later advisories.
CANARY = "requests==2.25.0"
RESULT = "vulnerabilities.json"
SERVICES = ("pypi", "osv")
_TIMEOUT_S = 600


def _pip_audit(context: Context, requirements: Path, output: Path) -> tuple[dict | None, str]:
    """pip-audit's JSON report of `requirements` (exact pins, no resolution), or None, and
    what it said on stderr."""
    output.unlink(missing_ok=True)
    database = ["--osv-url", context.osv_url] if context.osv_url else []
    try:
        done = context.run(
            context.tool("pip-audit"), "--requirement", requirements, "--no-deps",
            "--disable-pip", "--vulnerability-service", context.vulnerability_service,
            *database, "--format", "json",
            "--output", output, "--progress-spinner", "off", "--timeout", "20",
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"pip-audit gave no answer in {_TIMEOUT_S} s"
    said = done.stderr.strip()
    if not output.is_file():
        return None, said
    return json.loads(output.read_text()), said


def _frozen(context: Context) -> list[str]:
    done = context.run(context.runtime_python, "-m", "pip", "freeze", "--all",
                       "--disable-pip-version-check")
    if done.returncode != 0:
        raise RuntimeError(f"pip freeze failed: {done.stderr.strip()}")
    return [line for line in done.stdout.splitlines()
            if "==" in line and not line.lower().startswith("auxip==")]


def check(context: Context) -> Outcome:
    service = context.vulnerability_service + (f" at {context.osv_url}" if context.osv_url else "")
    canary_file = context.out / "vulnerability-canary.txt"
    canary_file.write_text(CANARY + "\n")
    canary, said = _pip_audit(context, canary_file, context.out / "vulnerability-canary.json")
    answered = canary is not None and any(dep.get("vulns") for dep in canary["dependencies"])
    if not answered:
        # pip-audit's own words: why the canary was skipped, or the error it stopped on
        # (never its closing "No known vulnerabilities found", which is what misleads)
        why = ([dep["skip_reason"] for dep in canary["dependencies"] if "skip_reason" in dep]
               if canary is not None else
               [line for line in said.splitlines() if "Error" in line or "ERROR" in line][-2:])
        status = FAILED if context.require_vulnerability_db else NOT_CHECKED
        return Outcome("vulnerabilities", status,
                       f"no vulnerability database answered (service {service}: {CANARY}, "
                       "known to be vulnerable, came back clean or not at all); the "
                       "dependencies were NOT checked for known vulnerabilities. Run "
                       "`make audit` where the internet is reachable", why)
    pinned = context.out / "runtime-requirements.txt"
    pinned.write_text("\n".join(_frozen(context)) + "\n")
    report, said = _pip_audit(context, pinned, context.out / RESULT)
    if report is None:
        return Outcome("vulnerabilities", FAILED, "pip-audit failed after answering the canary",
                       said.splitlines()[-5:])
    found = [f"{dep['name']} {dep['version']}: {vuln['id']} "
             f"({', '.join(vuln.get('aliases', []))}) fixed in "
             f"{', '.join(vuln.get('fix_versions', [])) or 'no release yet'}"
             for dep in report["dependencies"] for vuln in dep.get("vulns", [])]
    skipped = [f"{dep['name']}: {dep['skip_reason']}" for dep in report["dependencies"]
               if "skip_reason" in dep]
    if found or skipped:
        return Outcome("vulnerabilities", FAILED, f"{len(found)} known vulnerabilities, "
                       f"{len(skipped)} packages not audited (service {service})",
                       found + skipped)
    return Outcome("vulnerabilities", PASSED, f"{len(report['dependencies'])} packages, no known "
                   f"vulnerability (service {service}): {context.out / RESULT}")
