"""The rendered deployment against the rest of the tree: functions/ (one Service per folder
and a folder per Service), events/ (every produced type is consumed or TERMINAL, one
EventType per type), the local stack (every Service is one it can run) and shared.adapters.settings
(every configured variable is a setting)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import shared
from deployment.documents import describe
from deployment.paths import function_source
from deployment.references import trigger_types
from events.registry import DATA_MODELS, TERMINAL
from functions import FUNCTIONS, folder_of

SERVING = "serving.knative.dev/v1"
# Configured objects whose keys must be settings, by kind and name. (The Secret may also hold
# variables a routing configuration references, `${AUXIP_ADGS_PASSWORD}`: not checked.)
SETTINGS_OBJECTS = {("ConfigMap", "auxip-config"): "data"}


def setting_variables() -> set[str]:
    """Every AUXIP_* variable some settings class reads: shared.adapters.settings.Settings and the
    per-component ones (shared/**/settings.py, e.g. the route function's own)."""
    names: set[str] = set()
    for module_name in _settings_modules():
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseSettings)
                    and value.model_config.get("env_prefix") == "AUXIP_"):
                names.update(_variables(value))
    return names


def _settings_modules() -> list[str]:
    root = Path(shared.__file__).parent
    return sorted("shared." + ".".join(p.relative_to(root).with_suffix("").parts)
                  for p in root.rglob("settings.py"))


def _variables(settings: type[BaseSettings]) -> set[str]:
    names = set()
    for field_name, field in settings.model_fields.items():
        names.add(f"AUXIP_{field_name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names.update(c for c in field.validation_alias.choices if isinstance(c, str) and c.startswith("AUXIP_"))
    return names


def problems(documents: Iterable[dict], function_services: Sequence[str]) -> list[str]:
    documents = list(documents)
    return [*_functions(documents, function_services), *_events(documents), *_settings(documents)]


def _services(documents: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents
            if d.get("kind") == "Service" and d.get("apiVersion") == SERVING}


def _functions(documents: list[dict], present: Sequence[str]) -> Iterator[str]:
    services = _services(documents)
    for name in present:
        if name not in services:
            yield (f"functions/{folder_of(name)}/ has no Service {name}: run `make manifests` "
                   "(and give it an entry in knative/functions.yaml if it consumes events)")
    for name, service in services.items():
        where = describe(service)
        if name not in present:
            yield f"{where}: no function folder functions/{folder_of(name)}/main.py"
        if name not in FUNCTIONS:
            yield f"{where}: not in functions.FUNCTIONS, so the local stack cannot run it"
        containers = service["spec"]["template"]["spec"].get("containers") or [{}]
        env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
        if env.get("FUNCTION_TARGET") != "handle":
            yield f"{where}: FUNCTION_TARGET must be handle, got {env.get('FUNCTION_TARGET')!r}"
        if env.get("FUNCTION_SOURCE") != function_source(name):
            yield f"{where}: FUNCTION_SOURCE must be {function_source(name)}, got {env.get('FUNCTION_SOURCE')!r}"


def _events(documents: list[dict]) -> Iterator[str]:
    consumed: dict[str, list[str]] = {}
    for trigger in (d for d in documents if d.get("kind") == "Trigger"):
        for event_type in trigger_types(trigger):
            consumed.setdefault(event_type, []).append(describe(trigger))
    for event_type in DATA_MODELS:
        if event_type in TERMINAL and event_type in consumed:
            yield (f"{', '.join(consumed[event_type])}: consumes {event_type}, which "
                   "events/registry.py declares TERMINAL (consumed by no Trigger)")
        if event_type not in TERMINAL and event_type not in consumed:
            yield (f"event type {event_type} is produced but no Trigger consumes it: add a consumer "
                   "in knative/functions.yaml, or declare it TERMINAL in events/registry.py")
    declared = {a.get("value") for d in documents if d.get("kind") == "EventType"
                for a in (d.get("spec") or {}).get("attributes") or [] if a.get("name") == "type"}
    for event_type in sorted(set(DATA_MODELS) - declared):
        yield f"event type {event_type} has no EventType: run `make manifests`"
    for event_type in sorted(declared - set(DATA_MODELS)):
        yield f"EventType for {event_type!r}, which events/registry.py does not define"


def _settings(documents: list[dict]) -> Iterator[str]:
    variables = setting_variables()
    for document in documents:
        section = SETTINGS_OBJECTS.get((document.get("kind"), (document.get("metadata") or {}).get("name")))
        if section is None:
            continue
        for key in document.get(section) or {}:
            if key not in variables:
                yield f"{describe(document)}: {section}.{key} is no setting of shared/adapters/settings.py"
