"""Secrets committed to the tree: detect-secrets scans every file git tracks and compares
its findings with `secrets.baseline`, the findings a person reviewed and marked as not
secret (test credentials, `change-me` placeholders, checksums that look random). A new
finding, or one marked as a real secret, fails. Findings are matched by file, type and
the secret's hash, so moving a line does not make it new."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from audit.context import FAILED, PASSED, Context, Outcome

BASELINE = Path(__file__).with_name("secrets.baseline")
RESULT = "secrets.json"


def _unreviewed(baseline: dict) -> list[str]:
    found = []
    for filename, secrets in sorted(baseline["results"].items()):
        for secret in secrets:
            if secret.get("is_secret") is False:
                continue
            verdict = "marked as a real secret" if secret.get("is_secret") else "new"
            found.append(f"{filename}:{secret['line_number']}: {secret['type']} ({verdict})")
    return found


def check(context: Context) -> Outcome:
    if context.run("git", "rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        return Outcome("secrets", FAILED, f"{context.root} is not a git work tree: the scan "
                       "reads the files git tracks")
    result = context.out / RESULT
    shutil.copyfile(BASELINE, result)  # the scan rewrites the baseline it is given
    done = context.run(context.tool("detect-secrets"), "scan", "--baseline", result)
    if done.returncode != 0:
        return Outcome("secrets", FAILED, "detect-secrets failed", done.stderr.strip().splitlines())
    scanned = json.loads(result.read_text())
    unreviewed = _unreviewed(scanned)
    tracked = len(context.run("git", "ls-files").stdout.splitlines())
    if unreviewed:
        return Outcome("secrets", FAILED, f"{len(unreviewed)} unreviewed findings in {tracked} "
                       "tracked files: remove a real secret (and revoke it: it stays in git "
                       "history); record a false one with `make secrets-baseline`", unreviewed)
    reviewed = sum(len(secrets) for secrets in scanned["results"].values())
    return Outcome("secrets", PASSED, f"{tracked} tracked files, no secret "
                   f"({reviewed} findings reviewed as not secret in audit/{BASELINE.name})")


def review(context: Context) -> None:
    """Bring `secrets.baseline` up to date with the tree, then label its new findings
    (detect-secrets' interactive audit): what `make secrets-baseline` runs."""
    detect = context.tool("detect-secrets")
    baseline = str(BASELINE.relative_to(context.root))  # the baseline records the name given
    subprocess.run([detect, "scan", "--baseline", baseline], cwd=context.root, check=True)
    subprocess.run([detect, "audit", baseline], cwd=context.root, check=True)
