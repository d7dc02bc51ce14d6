"""Each rendered document against its model or schema.

Knative kinds with a published model (cloudcoil's pydantic models of Serving and Eventing)
are validated by it, and any field the model does not know is reported too (the models
ignore unknown fields; Kubernetes would refuse or silently drop them). Kubernetes' own kinds
(Namespace, ConfigMap, Secret...) are validated by kubernetes-validate against the API's
OpenAPI schemas, strictly (unknown fields are errors). knative/schemas/ adds what neither
knows: `<Kind>-<name>.json` for one object (what auxip-config and the Secret may hold), else
`<Kind>.json` (KafkaSource, which has no published model). A kind with neither is a problem:
every document the deployment applies is checked.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

# The Kubernetes API version whose schemas core objects are checked against (the newest that
# kubernetes-validate ships: the objects here are stable v1 kinds).
KUBERNETES_VERSION = "1.37.0"
MODELS: dict[tuple[str, str], str] = {
    ("serving.knative.dev/v1", "Service"): "cloudcoil.models.knative_serving.serving.v1:Service",
    ("eventing.knative.dev/v1", "Broker"): "cloudcoil.models.knative_eventing.eventing.v1:Broker",
    ("eventing.knative.dev/v1", "Trigger"): "cloudcoil.models.knative_eventing.eventing.v1:Trigger",
    ("eventing.knative.dev/v1beta3", "EventType"): "cloudcoil.models.knative_eventing.eventing.v1beta3:EventType",
    ("sources.knative.dev/v1", "PingSource"): "cloudcoil.models.knative_eventing.sources.v1:PingSource",
    ("sources.knative.dev/v1", "SinkBinding"): "cloudcoil.models.knative_eventing.sources.v1:SinkBinding",
}

# Fields the Knative CRDs keep although their schema (and so the models) does not list them:
# `spec.delivery` preserves unknown fields for the delivery features behind flags
# (`delivery-timeout` is beta and on by default; knative/eventing#5654, #5687).
PRESERVED: dict[str, frozenset[str]] = {
    kind: frozenset({"spec.delivery.timeout", "spec.delivery.retryAfterMax"})
    for kind in ("Broker", "Trigger")
}


def describe(document: dict) -> str:
    metadata = document.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))
    return f"{document.get('kind')} {name}"


def problems(document: dict, schemas: Path) -> list[str]:
    where = describe(document)
    key = (str(document.get("apiVersion")), str(document.get("kind")))
    schema = schema_for(document, schemas)
    if key in MODELS:
        found = list(_model_problems(document, _model(MODELS[key])))
    else:
        core = _kubernetes_problems(document)
        if core is None and schema is None:
            return [f"{where}: no model for {key[0]} {key[1]} and no schema in {schemas} "
                    f"({key[1]}-<name>.json or {key[1]}.json)"]
        found = core or []
    if schema is not None:
        found += list(_schema_problems(document, schema))
    found += list(_cpu_problems(document))
    return [f"{where}: {problem}" for problem in found]


def _kubernetes_problems(document: dict) -> list[str] | None:
    """Problems of a Kubernetes kind by the API's own schema; None for a kind it has not."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path) or "(document)"
        return [f"{path}: {error.message}"]
    return []


@cache
def _model(path: str) -> Any:
    module, name = path.split(":")
    with warnings.catch_warnings():
        # cloudcoil's generated Channel model warns about shadowed attributes on import.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError as error:
            raise ImportError(f"{error}: the Knative models are dev dependencies "
                              "(cloudcoil-models-knative-serving/-eventing): pip install -e '.[dev]'") from None


def _model_problems(document: dict, model: Any) -> Iterator[str]:
    from pydantic import ValidationError

    try:
        validated = model.model_validate(document)
    except ValidationError as error:
        for item in error.errors():
            yield f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
        return
    except (TypeError, ValueError) as error:  # pydantic schema errors, e.g. "1" as a CPU
        yield f"not valid for {model.__name__}: {error}"
        return
    dumped = validated.model_dump(by_alias=True, exclude_unset=True, mode="json")
    preserved = PRESERVED.get(str(document.get("kind")), frozenset())
    for path in _unknown_fields(document, dumped, ""):
        if path.lstrip(".") not in preserved:
            yield f"{path.lstrip('.')}: unknown field"


def _unknown_fields(given: Any, known: Any, path: str) -> Iterator[str]:
    if isinstance(given, dict) and isinstance(known, dict):
        for key, value in given.items():
            if key not in known:
                yield f"{path}.{key}"
            else:
                yield from _unknown_fields(value, known[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(known, list) and len(given) == len(known):
        for index, (value, kept) in enumerate(zip(given, known, strict=True)):
            yield from _unknown_fields(value, kept, f"{path}[{index}]")


def schema_for(document: dict, schemas: Path) -> dict | None:
    kind = str(document.get("kind"))
    name = str((document.get("metadata") or {}).get("name"))
    for candidate in (schemas / f"{kind}-{name}.json", schemas / f"{kind}.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return None


def _schema_problems(document: dict, schema: dict) -> Iterator[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "(document)"
        yield f"{path}: {error.message}"


def _cpu_problems(document: dict) -> Iterator[str]:
    # Whole cores ("1") trip the cloudcoil models, and mixed notations read badly: millicores.
    for path, container in _containers(document):
        for section in ("requests", "limits"):
            cpu = ((container.get("resources") or {}).get(section) or {}).get("cpu")
            if cpu is not None and not (isinstance(cpu, str) and cpu.endswith("m") and cpu[:-1].isdigit()):
                yield f"{path}.resources.{section}.cpu: write CPU in millicores (\"1000m\"), got {cpu!r}"


def _containers(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for index, container in enumerate(value):
                    if isinstance(container, dict):
                        yield f"{path}.{key}[{index}]".lstrip("."), container
            else:
                yield from _containers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _containers(item, f"{path}[{index}]")
