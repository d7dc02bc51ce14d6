"""Copies of the deployment tree for tests that break it on purpose. Nothing here needs the
test stack: these tests only read and render files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deployment.paths import REPOSITORY_ROOT, Tree
from functions import folder_of


def copy_tree(destination: Path) -> Tree:
    """knative/ and a stub functions/<folder>/main.py for every function of the repository."""
    shutil.copytree(REPOSITORY_ROOT / "knative", destination / "knative")
    for service in Tree().function_services():
        main = destination / "functions" / folder_of(service) / "main.py"
        main.parent.mkdir(parents=True)
        main.write_text("def handle(event):\n    pass\n")
    return Tree(destination)


@pytest.fixture
def tree_copy(tmp_path: Path) -> Tree:
    return copy_tree(tmp_path)
