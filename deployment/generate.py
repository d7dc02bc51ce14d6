"""The generated part of knative/base/: one Service per function folder, its Triggers and
PingSources from knative/functions.yaml, and one EventType per event type of events/.

Generated files are checked in (the local router reads them, reviewers see them) and a test
fails when they drift: `make manifests` rewrites them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deployment import spec as spec_module
from deployment.paths import Tree, function_source
from deployment.yamldocs import dump_all
from events import types
from events.envelope import PACKAGED, PUBLISHED
from events.registry import DATA_MODELS
from functions import FUNCTIONS
from shared.adapters.telemetry import metrics

NAMESPACE = "auxip"  # the base's; overlays set their own
BROKER = "default"
IMAGE = "auxip:latest"  # overlays pick registry and tag (kustomize `images`)
CONFIG_MAP = "auxip-config"
SECRET = "auxip-secrets"
PART_OF = {"app.kubernetes.io/part-of": "auxip"}  # what the SinkBinding selects
PORT = 8080
METRICS_PATH = metrics.ROUTE

SERVING = "serving.knative.dev/v1"
EVENTING = "eventing.knative.dev/v1"
SOURCES = "sources.knative.dev/v1"
EVENT_TYPES_API = "eventing.knative.dev/v1beta3"

HEADER = ("# Generated from {source} by `make manifests` (python -m deployment generate).\n"
          "# Edit the source, not this file: a test fails when the two disagree.\n")
TRIGGERS_NOTE = "# One Trigger per consumer of the default broker, filtering on the event type.\n"
SOURCES_NOTE = "# PingSources tick their function directly (the sink is the Service).\n"


def service_order(services: list[str]) -> list[str]:
    """Pipeline order (the local stack's), then any unknown name."""
    known = [s for s in FUNCTIONS if s in services]
    return known + sorted(set(services) - set(known))


def service(name: str, fn: spec_module.Function) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, **PART_OF, "app.kubernetes.io/component": "function"}
    if not fn.public:
        labels["networking.knative.dev/visibility"] = "cluster-local"
    return {
        "apiVersion": SERVING,
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {"template": {
            "metadata": {
                "labels": {"app.kubernetes.io/name": name, **PART_OF},
                "annotations": {
                    "autoscaling.knative.dev/min-scale": str(fn.min_scale),
                    "autoscaling.knative.dev/max-scale": str(fn.max_scale),
                    "autoscaling.knative.dev/target": str(fn.concurrency),
                    # Each function serves /metrics on its own port (telemetry.metrics):
                    # Prometheus' pod discovery scrapes the user container there.
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(PORT),
                    "prometheus.io/path": METRICS_PATH,
                },
            },
            "spec": {
                "timeoutSeconds": fn.timeout_seconds,
                "containers": [{
                    "name": "function",
                    "image": IMAGE,
                    "ports": [{"name": "http1", "containerPort": PORT}],
                    # functions-framework reads both; the image's working directory holds
                    # functions/ (see Dockerfile), as the repository root does locally.
                    "env": [
                        {"name": "FUNCTION_TARGET", "value": "handle"},
                        {"name": "FUNCTION_SOURCE", "value": function_source(name)},
                    ],
                    "envFrom": [
                        {"configMapRef": {"name": CONFIG_MAP}},
                        {"secretRef": {"name": SECRET}},
                    ],
                    "resources": {
                        "requests": {"cpu": fn.cpu.request, "memory": fn.memory.request},
                        "limits": {"cpu": fn.cpu.limit, "memory": fn.memory.limit},
                    },
                    # functions-framework answers GET / only for HTTP functions (CloudEvent
                    # ones take POST only), so the probes check the port accepts connections.
                    "readinessProbe": {"tcpSocket": {}},
                    "livenessProbe": {"tcpSocket": {}, "periodSeconds": 10, "failureThreshold": 3},
                    "securityContext": {
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }],
            },
        }},
    }


def trigger_name(service_name: str, event_type: str) -> str:
    """`ingest` + `org.auxip.file.arrived.v1` -> `ingest-file-arrived` (other versions keep
    their suffix: `...-file-arrived-v2`)."""
    short = event_type.removeprefix(types.PREFIX + ".").removesuffix(".v1")
    return f"{service_name}-{re.sub(r'[^a-z0-9]+', '-', short.lower()).strip('-')}"


def trigger(service_name: str, subscription: spec_module.Subscription) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "broker": BROKER,
        "filters": [{"exact": {"type": subscription.type}},
                    *(dict(f) for f in subscription.filters)],
        "subscriber": {"ref": {"apiVersion": SERVING, "kind": "Service", "name": service_name}},
    }
    if subscription.delivery:
        spec["delivery"] = dict(subscription.delivery)
    return {
        "apiVersion": EVENTING,
        "kind": "Trigger",
        "metadata": {"name": trigger_name(service_name, subscription.type), "namespace": NAMESPACE},
        "spec": spec,
    }


def ping_source(service_name: str, schedule: spec_module.Schedule, index: int) -> dict[str, Any]:
    name = schedule.name or (f"{service_name}-tick" if index == 0 else f"{service_name}-tick-{index}")
    spec: dict[str, Any] = {"schedule": schedule.cron}
    if schedule.timezone:
        spec["timezone"] = schedule.timezone
    spec["contentType"] = schedule.content_type
    if schedule.data is not None:
        spec["data"] = schedule.data
    spec["sink"] = {"ref": {"apiVersion": SERVING, "kind": "Service", "name": service_name}}
    return {"apiVersion": SOURCES, "kind": "PingSource",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def event_type_name(event_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", event_type.lower()).strip("-")


def event_type(name: str) -> dict[str, Any]:
    doc = " ".join((DATA_MODELS[name].__doc__ or "").split("\n\n")[0].split())
    attributes = [
        {"name": "specversion", "required": True, "value": "1.0"},
        {"name": "type", "required": True, "value": name},
        # Producers set /auxip/<function> (Settings.event_source + the function's name).
        {"name": "source", "required": True, "value": "/auxip/{function}"},
        {"name": "id", "required": True},
        {"name": "time", "required": True},
        {"name": "datacontenttype", "required": True, "value": "application/json"},
        {"name": "dataschema", "required": True, "value": f"urn:auxip:schema:{name}"},
        {"name": "subject", "required": False},
        {"name": "traceparent", "required": False},
    ]
    if name == types.PRODUCT_INGESTED:
        attributes.append({"name": PACKAGED, "required": False, "value": "true"})
    if name == types.PRODUCT_PACKAGED:
        attributes.append({"name": PUBLISHED, "required": False, "value": "true"})
    return {
        "apiVersion": EVENT_TYPES_API,
        "kind": "EventType",
        "metadata": {"name": event_type_name(name), "namespace": NAMESPACE},
        "spec": {
            "reference": {"apiVersion": EVENTING, "kind": "Broker", "name": BROKER},
            "description": doc or name,
            "attributes": attributes,
        },
    }


def files(tree: Tree) -> dict[Path, str]:
    """Every generated file of knative/base/ and its expected text."""
    spec = spec_module.load(tree.spec_file)
    services = service_order(tree.function_services())
    deployed = [(name, spec.function(name)) for name in services]
    source = "knative/functions.yaml and functions/"
    triggers = [trigger(name, sub) for name, fn in deployed for sub in fn.subscribes]
    pings = [ping_source(name, s, i) for name, fn in deployed for i, s in enumerate(fn.schedules)]
    header = HEADER.format(source=source)
    return {
        tree.base / "services.yaml": dump_all([service(n, fn) for n, fn in deployed], header),
        tree.base / "triggers.yaml": dump_all(triggers, header + TRIGGERS_NOTE),
        tree.base / "sources.yaml": dump_all(pings, header + SOURCES_NOTE),
        tree.base / "eventtypes.yaml": dump_all([event_type(t) for t in DATA_MODELS],
                                                HEADER.format(source="events/registry.py")),
    }


def write(tree: Tree) -> list[Path]:
    written = []
    for path, text in files(tree).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def drift(tree: Tree) -> list[Path]:
    """Generated files whose checked-in text differs from what `generate` writes."""
    return [path for path, text in files(tree).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]
