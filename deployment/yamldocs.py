"""Reading and writing multi-document YAML the way every file in knative/ is written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as kubectl and the hand-written files do.
        super().increase_indent(flow, False)


def _literal_multiline(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _literal_multiline)


def dump_all(documents: Iterable[Any], header: str = "") -> str:
    body = yaml.dump_all(list(documents), Dumper=_Dumper, sort_keys=False,
                         default_flow_style=False, width=100, explicit_start=False)
    return header + body


def load_all(path: Path) -> list[dict]:
    """The mapping documents of a YAML file (empty documents are skipped)."""
    documents = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return [document for document in documents if document is not None]
