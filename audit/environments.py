"""The virtual environments the checks use: one for the tools, and the runtime one, which
holds what `pip install .` puts in the image (pyproject's dependencies, nothing of the
dev extra). Each is made again only when what it must hold changes: a stamp inside
records it, so a second `make audit` spends no time here."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

TOOLS_FILE = Path(__file__).with_name("tools.txt")
_STAMP = ".audit-requirements"


def tool_requirements() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in TOOLS_FILE.read_text().splitlines())
    return [line for line in lines if line]


def runtime_requirements(pyproject: Path) -> list[str]:
    """What `pip install .` resolves besides auxip itself: the [project] dependencies."""
    with pyproject.open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def ensure(venv: Path, requirements: list[str]) -> Path:
    """The python of `venv` holding exactly `requirements`: made, or made again from
    scratch when the list changed (so a dependency dropped from the list leaves it too)."""
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    stamp = venv / _STAMP
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    if venv.exists():
        if not (venv / "pyvenv.cfg").is_file():
            raise RuntimeError(f"{venv} exists and is not a virtual environment; not touching it")
        shutil.rmtree(venv)
    print(f"audit: making {venv} ({len(requirements)} requirements)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements], check=True)
    stamp.write_text(wanted)
    return python
