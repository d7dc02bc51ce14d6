"""`make audit` on a copy of the tree or on a planted environment, never by planting into
the working tree. The tools' and the runtime's virtual environments are the repository's
own (.venv-audit, .venv-runtime: made here when missing, shared by every test)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from audit import environments

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tools_venv() -> Path:
    environments.ensure(REPO / ".venv-audit", environments.tool_requirements())
    return REPO / ".venv-audit"


@pytest.fixture(scope="session")
def runtime_python() -> Path:
    return environments.ensure(REPO / ".venv-runtime",
                               environments.runtime_requirements(REPO / "pyproject.toml"))


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=tree, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A git work tree holding what this one tracks (and any new file not yet added)."""
    copy = tmp_path / "tree"
    files = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    git(copy, "init", "--quiet")
    git(copy, "add", "--all")
    return copy


MakeAudit = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def make_audit(tools_venv: Path, tmp_path: Path) -> MakeAudit:
    """`make audit AUDIT_ARGS=...` in `tree` (default: this repository), with the shared
    tools, reports in a temporary folder (or where make audit puts them: `own_out`)."""
    def run(*args: str | Path, tree: Path = REPO, own_out: bool = False,
            ) -> subprocess.CompletedProcess[str]:
        out = () if own_out else ("--out", tmp_path / "out")
        arguments = " ".join(str(a) for a in ("--tools-venv", tools_venv, *out, *args))
        done = subprocess.run(["make", "--no-print-directory", "-C", str(tree), "audit",
                               f"AUDIT_ARGS={arguments}"], capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k != "MAKEFLAGS"},
                              timeout=600)
        print(done.stdout, done.stderr)
        return done
    return run
