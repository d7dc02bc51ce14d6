"""What every check is given (the tree, where reports go, the tools, the runtime to judge)
and what it gives back."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from audit import environments

PASSED, FAILED, NOT_CHECKED = "passed", "failed", "NOT CHECKED"
Status = Literal["passed", "failed", "NOT CHECKED"]


@dataclass
class Outcome:
    step: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)


@dataclass
class Context:
    root: Path  # the working tree checked
    out: Path  # reports
    tools_venv: Path
    given_runtime: Path | None = None  # a python whose environment is judged as it is
    code: tuple[str, ...] = ("shared", "events", "functions", "devstack", "deployment", "audit")
    vulnerability_service: str = "pypi"
    osv_url: str | None = None  # an OSV API of one's own (a mirror); implies service osv
    require_vulnerability_db: bool = False

    @cached_property
    def _tools_python(self) -> Path:
        return environments.ensure(self.tools_venv, environments.tool_requirements())

    def tool(self, name: str) -> str:
        return str(self._tools_python.parent / name)

    @cached_property
    def runtime_python(self) -> Path:
        """The environment the image ships: the one given, else .venv-runtime made from
        pyproject.toml's dependencies."""
        if self.given_runtime is not None:
            return self.given_runtime
        return environments.ensure(self.root / ".venv-runtime",
                                   environments.runtime_requirements(self.root / "pyproject.toml"))

    def run(self, *args: str | Path, timeout: float | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in args], cwd=self.root, capture_output=True,
                              text=True, timeout=timeout)
