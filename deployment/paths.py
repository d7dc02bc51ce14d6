"""Where the deployment lives in a source tree.

Every function of the tree is a folder `functions/<folder>/main.py` whose Knative Service is
the folder name with '-' for '_' (`functions.FUNCTIONS` lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from functions import folder_of

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = ("local", "production")


@dataclass(frozen=True)
class Tree:
    """One source tree: the repository, or a copy of it that a test modifies."""

    root: Path = REPOSITORY_ROOT

    @property
    def knative(self) -> Path:
        return self.root / "knative"

    @property
    def base(self) -> Path:
        return self.knative / "base"

    @property
    def spec_file(self) -> Path:
        return self.knative / "functions.yaml"

    @property
    def schemas(self) -> Path:
        return self.knative / "schemas"

    def overlay(self, name: str) -> Path:
        return self.knative / "overlays" / name

    def rendered(self, overlay: str) -> Path:
        return self.knative / "rendered" / f"{overlay}.yaml"

    def function_services(self) -> list[str]:
        """Service names of the function folders present, sorted."""
        folders = self.root / "functions"
        return sorted(
            path.parent.name.replace("_", "-") for path in folders.glob("*/main.py") if path.is_file()
        )


def function_source(service: str) -> str:
    """FUNCTION_SOURCE for a Service: relative, so it resolves from the repository root
    locally and from the image's working directory (see Dockerfile) alike."""
    return f"functions/{folder_of(service)}/main.py"
