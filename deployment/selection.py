"""The documents of one function: its Service, the Triggers delivering to it and the
PingSources ticking it (`make deploy FUNCTION=ingest`)."""

from __future__ import annotations

from collections.abc import Iterable

SERVING = "serving.knative.dev/v1"


class SelectionError(ValueError):
    pass


def _targets(destination: object, service: str) -> bool:
    ref = destination.get("ref") if isinstance(destination, dict) else None
    return isinstance(ref, dict) and ref.get("kind") == "Service" and ref.get("apiVersion") == SERVING \
        and ref.get("name") == service


def of_function(documents: Iterable[dict], service: str) -> list[dict]:
    selected = []
    for document in documents:
        kind, spec = document.get("kind"), document.get("spec") or {}
        if kind == "Service" and document.get("apiVersion") == SERVING:
            if document["metadata"]["name"] == service:
                selected.append(document)
        elif kind == "Trigger" and _targets(spec.get("subscriber"), service):
            selected.append(document)
        elif kind == "PingSource" and _targets(spec.get("sink"), service):
            selected.append(document)
    if not any(d.get("kind") == "Service" for d in selected):
        raise SelectionError(f"no Service {service!r} in the rendered manifests")
    return selected
