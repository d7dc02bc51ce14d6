"""No unused runtime dependency: every package pyproject.toml installs with auxip is imported
by the code that ships (shared/, events/, functions/), or is named below with the reason it
is needed without an import."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("shared", "events", "functions")
# Needed although no module imports them, and why.
NOT_IMPORTED = {
    "gunicorn": "functions-framework serves every function with it; pinned here",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normal(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])
            for requirement in project["dependencies"]}


def imported_modules() -> set[str]:
    found: set[str] = set()
    for folder in SHIPPED:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
    return found


@cache
def files_of(distribution: str) -> frozenset[Path]:
    try:
        files = importlib.metadata.distribution(distribution).files or ()
    except importlib.metadata.PackageNotFoundError:  # declared, not installed: unused here
        return frozenset()
    return frozenset(Path(str(file.locate())).resolve() for file in files)


def origins(modules: set[str]) -> set[Path]:
    found = set()
    for module in modules:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and spec.has_location:
            found.add(Path(spec.origin).resolve())
    return found


def used_dependencies() -> set[str]:
    imported = origins(imported_modules())
    return {name for name in runtime_dependencies() if files_of(name) & imported}


def test_every_runtime_dependency_is_used():
    unused = runtime_dependencies() - used_dependencies() - set(NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml, imported nowhere: {sorted(unused)}"


def test_the_check_sees_what_is_imported_and_what_is_not():
    used = used_dependencies()
    # One plain, one behind a namespace package, one imported only inside a function.
    assert {"boto3", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= used
    assert set(NOT_IMPORTED) <= runtime_dependencies() - used
