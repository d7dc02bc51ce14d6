"""Everything `python -m deployment check` and the test suite verify, in one place:
generated files up to date, each overlay rendered by `kubectl kustomize` and validated
(documents, references, repository contract, patches that change nothing), rendered files
up to date."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deployment import contract, documents, generate, kustomize, references
from deployment.paths import OVERLAYS, Tree
from events import types
from events.registry import DATA_MODELS

# Types a Trigger may select: auxip's own, and those Knative sources produce.
KNOWN_EVENT_TYPES = frozenset({*DATA_MODELS, types.KAFKA_RECORD, types.PING})
RENDERED_HEADER = ("# `kubectl kustomize knative/overlays/{overlay}` by `make manifests`: "
                   "apply this file,\n# edit the sources.\n")


@dataclass
class Report:
    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, found: list[str]) -> None:
        if found:
            self.problems.setdefault(where, []).extend(found)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        return "\n".join(f"{where}: {problem}" for where, found in self.problems.items() for problem in found)


def validate(rendered: list[dict], tree: Tree) -> list[str]:
    """Problems of one overlay's rendered documents."""
    found = [p for d in rendered for p in documents.problems(d, tree.schemas)]
    found += references.problems(rendered, KNOWN_EVENT_TYPES, tree.schemas)
    found += contract.problems(rendered, tree.function_services())
    return found


def rendered_text(tree: Tree, overlay: str) -> str:
    """knative/rendered/<overlay>.yaml: kubectl's output under a header."""
    return RENDERED_HEADER.format(overlay=overlay) + kustomize.build(tree.overlay(overlay))


def write_manifests(tree: Tree, overlays: tuple[str, ...] = OVERLAYS) -> list[Path]:
    """What `make manifests` does: the generated files, then every rendered overlay."""
    written = generate.write(tree)
    for overlay in overlays:
        path = tree.rendered(overlay)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered_text(tree, overlay), encoding="utf-8")
        written.append(path)
    return written


def run(tree: Tree, overlays: tuple[str, ...] = OVERLAYS) -> Report:
    report = Report()
    try:
        report.add("generated", [f"{p.relative_to(tree.root)} is out of date: run `make manifests`"
                                 for p in generate.drift(tree)])
    except ValueError as error:
        report.add("generated", [str(error)])
    for overlay in overlays:
        try:
            expected = rendered_text(tree, overlay)
            report.add(overlay, kustomize.idle_patches(tree.overlay(overlay)))
        except kustomize.KustomizeError as error:
            report.add(overlay, [str(error)])
            continue
        report.add(overlay, validate(kustomize.documents(expected), tree))
        path = tree.rendered(overlay)
        if not path.exists() or path.read_text(encoding="utf-8") != expected:
            report.add(overlay, [f"{path.relative_to(tree.root)} is out of date: run `make manifests`"])
    return report
