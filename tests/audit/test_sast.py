"""The SAST pass of `make audit` (bandit): insecure code planted in a copy of the tree
fails it and is named; a suppression must name its test and give a reason; a code folder
that moved away is reported rather than silently not scanned."""

from __future__ import annotations

from pathlib import Path

from audit.context import FAILED, Context
from audit.sast import check, unexplained_suppressions
from tests.audit.conftest import MakeAudit, git

PLANTED = '''"""Runs what the operator typed."""

import subprocess

import yaml


def run(command: str) -> int:
    return subprocess.call(command, shell=True)


def settings(text: str) -> dict:
    return yaml.load(text, Loader=yaml.Loader)
'''


def test_make_audit_fails_on_planted_insecure_code(tree: Path, make_audit: MakeAudit):
    (tree / "shared" / "operator_shell.py").write_text(PLANTED)
    git(tree, "add", "--all")

    done = make_audit("sast", tree=tree)

    assert done.returncode != 0
    assert "audit: sast: failed" in done.stdout
    assert "shared/operator_shell.py:9: B602 high" in done.stdout
    assert "shared/operator_shell.py:13: B506 medium" in done.stdout
    assert "2 medium/high findings" in done.stdout  # nothing else: the tree itself passes


def test_a_suppression_needs_a_test_id_and_a_reason(tree: Path, make_audit: MakeAudit):
    planted = tree / "shared" / "operator_shell.py"
    planted.write_text(PLANTED.replace(
        "shell=True)", "shell=True)  # nosec").replace(
        "Loader=yaml.Loader)", "Loader=yaml.Loader)  # nosec B506"))
    git(tree, "add", "--all")

    done = make_audit("sast", tree=tree)

    assert done.returncode != 0
    assert "0 medium/high findings" in done.stdout  # bandit honours both...
    assert "2 unexplained suppressions" in done.stdout  # ...the audit does not
    assert "shared/operator_shell.py:9: # nosec" in done.stdout
    assert "shared/operator_shell.py:13: # nosec B506" in done.stdout

    planted.write_text(PLANTED.replace(
        "shell=True)", "shell=True)  # nosec B602  # the operator's own shell, by design").replace(
        "Loader=yaml.Loader)", "Loader=yaml.Loader)  # nosec B506  # a trusted local file"))
    git(tree, "add", "--all")
    done = make_audit("sast", tree=tree)
    assert done.returncode == 0
    assert "audit: sast: passed" in done.stdout


def test_suppressions_are_read_from_comments_only(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "m.py").write_text(
        'TEXT = "# nosec"  # a string is no suppression\n'
        "x = eval('1')  # nosec B307,B102  # a literal, evaluated once at import\n"
        "y = eval('2')  # NOSEC B307 #short\n")
    assert unexplained_suppressions(tmp_path, ("code",)) == ["code/m.py:3: # NOSEC B307 #short"]


def test_a_code_folder_that_moved_is_reported(tmp_path: Path):
    context = Context(root=tmp_path, out=tmp_path, tools_venv=tmp_path / "unused",
                      code=("shared", "devstack"))
    (tmp_path / "shared").mkdir()
    outcome = check(context)
    assert outcome.status == FAILED and "no such code folder: devstack" in outcome.summary
