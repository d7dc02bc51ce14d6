"""References between rendered documents: what a Trigger, Source, Broker, SinkBinding,
EventType or Service names must be among the documents applied with it.

Names resolve in the referring object's namespace unless the reference names another, as
Knative and Kubernetes resolve them. A Secret may also be one created outside the manifests
when knative/schemas/ describes it (`Secret-<name>.json`): production keeps its credentials
out of the repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from deployment.documents import describe

SERVING = "serving.knative.dev/v1"
EVENTING = "eventing.knative.dev/v1"


class Index:
    """The rendered documents by kind, namespace and name."""

    def __init__(self, documents: Iterable[dict]) -> None:
        self.documents = list(documents)
        self._by_key = {(d.get("kind"), _namespace(d), _name(d)): d for d in self.documents}

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return self._by_key.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.documents if d.get("kind") == kind]


def _namespace(document: dict) -> str:
    return str((document.get("metadata") or {}).get("namespace") or "default")


def _name(document: dict) -> str:
    return str((document.get("metadata") or {}).get("name"))


def trigger_types(trigger: dict) -> list[str]:
    """The event types a Trigger's filter selects (`filters` wins over legacy `filter`)."""
    spec = trigger.get("spec") or {}
    if spec.get("filters"):
        return [f["exact"]["type"] for f in spec["filters"]
                if isinstance(f, dict) and isinstance(f.get("exact"), dict) and "type" in f["exact"]]
    attributes = ((spec.get("filter") or {}).get("attributes") or {})
    return [attributes["type"]] if "type" in attributes else []


def problems(documents: Iterable[dict], event_types: Iterable[str], schemas: Path) -> list[str]:
    index = Index(documents)
    known_types = set(event_types)
    found: list[str] = []
    for document in index.documents:
        where = describe(document)
        found.extend(f"{where}: {p}" for p in _of(document, index, known_types, schemas))
    return found


def _of(document: dict, index: Index, known_types: set[str], schemas: Path) -> Iterator[str]:
    kind = document.get("kind")
    namespace = _namespace(document)
    spec = document.get("spec") or {}
    if kind == "Trigger":
        broker = spec.get("broker", "default")
        if index.get("Broker", namespace, broker) is None:
            yield f"spec.broker: no Broker {namespace}/{broker}"
        yield from _destination(spec.get("subscriber"), "spec.subscriber", namespace, index)
        types = trigger_types(document)
        if not types:
            yield "spec.filters: filters no event type (every auxip Trigger selects its type)"
        for event_type in types:
            if event_type not in known_types:
                yield f"spec.filters: event type {event_type!r} is not one events/ defines"
    if kind in ("Broker", "Trigger", "KafkaSource"):
        dead_letter = (spec.get("delivery") or {}).get("deadLetterSink")
        if dead_letter is not None:
            yield from _destination(dead_letter, "spec.delivery.deadLetterSink", namespace, index)
    if kind == "Broker" and spec.get("config"):
        config = spec["config"]
        config_namespace = config.get("namespace") or namespace
        found = index.get("ConfigMap", config_namespace, str(config.get("name")))
        if config.get("kind") != "ConfigMap" or found is None:
            yield (f"spec.config: no ConfigMap {config_namespace}/{config.get('name')} among the "
                   "manifests (an overlay that moves the namespace must patch this reference)")
    if kind in ("PingSource", "KafkaSource", "SinkBinding"):
        yield from _destination(spec.get("sink"), "spec.sink", namespace, index)
    if kind == "SinkBinding":
        yield from _subject(spec.get("subject") or {}, namespace, index)
    if kind == "EventType":
        yield from _destination({"ref": spec.get("reference")}, "spec.reference", namespace, index)
        declared = [a.get("value") for a in spec.get("attributes") or [] if a.get("name") == "type"]
        if not declared or declared[0] not in known_types:
            yield f"spec.attributes: type {declared[0] if declared else None!r} is not one events/ defines"
    if kind == "Service" and document.get("apiVersion") == SERVING:
        yield from _env_from(document, namespace, index, schemas)


def _destination(raw: Any, path: str, namespace: str, index: Index) -> Iterator[str]:
    if not isinstance(raw, Mapping) or (raw.get("ref") is None and raw.get("uri") is None):
        yield f"{path}: needs a ref or a uri"
        return
    ref = raw.get("ref")
    if ref is None:
        return  # a URL outside the manifests: nothing to resolve here
    kind, api, name = ref.get("kind"), ref.get("apiVersion"), ref.get("name")
    target_namespace = ref.get("namespace") or namespace
    if (kind, api) not in (("Service", SERVING), ("Broker", EVENTING)):
        yield f"{path}.ref: {api} {kind} is not an auxip destination (a Knative Service or a Broker)"
    elif index.get(kind, target_namespace, str(name)) is None:
        yield f"{path}.ref: no {kind} {target_namespace}/{name} among the manifests"


def _subject(subject: Mapping, namespace: str, index: Index) -> Iterator[str]:
    services = [s for s in index.of_kind(subject.get("kind", "")) if _namespace(s) == namespace
                and s.get("apiVersion") == subject.get("apiVersion")]
    if subject.get("name"):
        if not any(_name(s) == subject["name"] for s in services):
            yield f"spec.subject: no {subject.get('kind')} {namespace}/{subject['name']}"
        return
    wanted = ((subject.get("selector") or {}).get("matchLabels") or {})
    if not wanted or not any(
            wanted.items() <= ((s.get("metadata") or {}).get("labels") or {}).items() for s in services):
        yield f"spec.subject.selector: selects no {subject.get('kind')} in {namespace}"


def _env_from(service: dict, namespace: str, index: Index, schemas: Path) -> Iterator[str]:
    containers = (((service.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for number, container in enumerate(containers):
        for source in container.get("envFrom") or []:
            path = f"spec.template.spec.containers[{number}].envFrom"
            if "configMapRef" in source:
                name = source["configMapRef"].get("name")
                if index.get("ConfigMap", namespace, str(name)) is None:
                    yield f"{path}: no ConfigMap {namespace}/{name} among the manifests"
            if "secretRef" in source:
                name = source["secretRef"].get("name")
                described = (schemas / f"Secret-{name}.json").is_file()
                if index.get("Secret", namespace, str(name)) is None and not described:
                    yield (f"{path}: no Secret {namespace}/{name} among the manifests, and no "
                           f"knative/schemas/Secret-{name}.json describing one made in the cluster")
