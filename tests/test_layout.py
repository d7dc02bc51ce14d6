"""The tree's import rules (the contracts in pyproject.toml, checked by import-linter):
shared/ in layers, nothing shipped importing devstack/ or deployment/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "events", "functions", "devstack", "deployment")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the tree at `root`. `-S`: without the site module the editable
    install's import hook stays out, so a copy of the tree is what gets analysed."""
    path = os.pathsep.join([str(root), sysconfig.get_paths()["purelib"]])
    return subprocess.run(
        [sys.executable, "-S", "-c",
         "import sys; from importlinter.cli import lint_imports_command as lint;"
         " sys.exit(lint(['--no-cache']))"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": path})


def test_the_tree_keeps_its_import_contracts() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(("module", "planted", "contract"), [
    ("shared/core/naming.py", "from shared.adapters import storage", "in layers"),
    ("shared/adapters/storage.py", "from shared.pipeline import packaging", "in layers"),
    ("shared/prip/routes.py", "from shared.pipeline import publication", "in layers"),
    ("shared/adapters/settings.py", "from devstack.layout import Layout", "local stack"),
    ("functions/prip/main.py", "import deployment.paths", "local stack"),
    ("shared/adapters/outbox.py", "import functions", "functions that use it"),
    ("events/types.py", "from shared.core import naming", "the contract"),
])
def test_a_wrong_way_import_breaks_a_contract(copy: Path, module: str, planted: str,
                                               contract: str) -> None:
    path = copy / module
    path.write_text(path.read_text() + f"\n{planted}  # planted\n")
    done = _lint(copy)
    assert done.returncode != 0, done.stdout
    broken = [line for line in done.stdout.splitlines() if line.endswith("BROKEN")]
    # (one planted import may break more than one: devstack itself imports functions/)
    assert any(contract in line for line in broken), done.stdout
