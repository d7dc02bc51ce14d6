"""Static analysis of the project's code with bandit. A finding of medium or high severity
fails, whatever its confidence; low ones are kept in the report. A finding that is not a
flaw is suppressed on its own line, naming the test and saying why:

    conn.execute(f"SELECT {_COLUMNS} FROM products ...", params)  # nosec B608  # why

(the reason after a second `#`, where bandit stops reading test names). A `# nosec`
without a test id or without a reason fails the check too."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

from audit.context import FAILED, PASSED, Context, Outcome

REPORT = "bandit.json"
FAILING = {"MEDIUM", "HIGH"}
_NOSEC = re.compile(r"\bnosec\b", re.IGNORECASE)
_EXPLAINED = re.compile(r"#\s*nosec\s+B\d{3}(?:\s*,\s*B\d{3})*\s+#\s*\S.{9,}")


def unexplained_suppressions(root: Path, folders: tuple[str, ...]) -> list[str]:
    """`file:line: comment` of each nosec comment that names no test or gives no reason."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if (token.type == tokenize.COMMENT and _NOSEC.search(token.string)
                        and not _EXPLAINED.search(token.string)):
                    found.append(f"{path.relative_to(root)}:{token.start[0]}: {token.string}")
    return found


def check(context: Context) -> Outcome:
    missing = [folder for folder in context.code if not (context.root / folder).is_dir()]
    if missing:
        return Outcome("sast", FAILED, f"no such code folder: {', '.join(missing)} "
                       "(the code moved? update Context.code in audit/context.py)")
    report = context.out / REPORT
    done = context.run(context.tool("bandit"), "--recursive", "--quiet", "--format", "json",
                       "--output", report, *context.code)
    if done.returncode not in (0, 1) or not report.is_file():
        return Outcome("sast", FAILED, "bandit failed", done.stderr.strip().splitlines())
    results = json.loads(report.read_text())
    failing = [
        f"{r['filename']}:{r['line_number']}: {r['test_id']} {r['issue_severity'].lower()}"
        f"/{r['issue_confidence'].lower()} confidence: {r['issue_text']}"
        for r in results["results"] if r["issue_severity"] in FAILING
    ]
    unreadable = [f"{e['filename']}: {e['reason']}" for e in results["errors"]]
    unexplained = [f"suppression without a test id or a reason: {line}"
                   for line in unexplained_suppressions(context.root, context.code)]
    problems = failing + unreadable + unexplained
    low = len(results["results"]) - len(failing)
    suppressed = results["metrics"]["_totals"]["skipped_tests"]
    if problems:
        return Outcome("sast", FAILED, f"{len(failing)} medium/high findings, {len(unreadable)} "
                       f"unreadable files, {len(unexplained)} unexplained suppressions "
                       f"in {' '.join(context.code)}", problems)
    return Outcome("sast", PASSED, f"no medium/high finding in {' '.join(context.code)} "
                   f"({suppressed} suppressed with a reason, {low} low in {report})")
