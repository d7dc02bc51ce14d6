"""Knative manifests -> the router's topology: which events go where, and how persistently.

Every YAML document under a directory is read; `Broker` and `Trigger`
(eventing.knative.dev/v1), `PingSource` (sources.knative.dev/v1) and `KafkaSource`
(sources.knative.dev/v1beta1) are kept, other kinds ignored. References are resolved for
the local stack: a `serving.knative.dev/v1` Service X is `Layout.function_url(X)`, a Broker
is the router itself; a KafkaSource's `bootstrapServers` name production's Kafka, and the
router reads the stack's broker instead (AUXIP_KAFKA_BOOTSTRAP_SERVERS).

Delivery follows the Kafka Broker (the class auxip runs in production):
- a Trigger's `spec.delivery` is merged field by field over its Broker's; unset fields fall
  back to: no retries, exponential backoff, `router_backoff_delay_s`, the router's attempt
  timeout, no dead-letter sink. (The Kafka Broker cannot tell an explicit `retry: 0` on a
  Trigger from an unset one and then takes the Broker's retry; here an explicit 0 wins.)
- retry n waits backoffDelay * 2^n (exponential) or backoffDelay * n (linear), n = 1, 2, ...

A bad manifest raises ManifestError naming the file, the object and the field.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from devstack.layout import Layout
from devstack.router import cron, durations, filters
from devstack.router.kafka_source import KafkaSource
from devstack.router.topology import (
    Broker,
    Defaults,
    Delivery,
    DeliverySpec,
    Destination,
    PingSource,
    Subscription,
    Topology,
    Trigger,
)
from functions import FUNCTIONS

EVENTING = "eventing.knative.dev/v1"
SOURCES = "sources.knative.dev/v1"
SOURCES_V1BETA1 = "sources.knative.dev/v1beta1"
SERVING = "serving.knative.dev/v1"
DEFAULT_NAMESPACE = "default"


KINDS = ("Broker", "Trigger", "PingSource", "KafkaSource")


class ManifestError(ValueError):
    pass


def load(directory: Path, layout: Layout, defaults: Defaults) -> Topology:
    if not directory.is_dir():
        raise ManifestError(f"{directory}: no such manifest directory")
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    documents: list[tuple[str, dict]] = []
    for path in files:
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as error:
            raise ManifestError(f"{path}: not valid YAML: {error}") from None
        for document in loaded:
            if isinstance(document, dict) and document.get("kind") in KINDS:
                documents.append((str(path), document))
    return build(documents, layout, defaults, files=[str(p) for p in files])


def build(
    documents: Sequence[tuple[str, dict]],
    layout: Layout,
    defaults: Defaults,
    files: Sequence[str] = (),
) -> Topology:
    """The topology of already-read documents (file name, document)."""
    resolver = _Resolver(layout)
    brokers: dict[str, Broker] = {}
    for file, document in documents:
        if document["kind"] == "Broker":
            broker = _broker(_Object(file, document, EVENTING), resolver)
            if broker.key in brokers:
                raise ManifestError(f"{file}: Broker {broker.key} is defined twice (also in {brokers[broker.key].file})")
            brokers[broker.key] = broker
    triggers: dict[str, Trigger] = {}
    pings: dict[str, PingSource] = {}
    kafkas: dict[str, KafkaSource] = {}
    for file, document in documents:
        if document["kind"] == "Trigger":
            trigger = _trigger(_Object(file, document, EVENTING), resolver, brokers, defaults)
            if trigger.key in triggers:
                raise ManifestError(f"{file}: Trigger {trigger.key} is defined twice (also in {triggers[trigger.key].file})")
            triggers[trigger.key] = trigger
        elif document["kind"] == "PingSource":
            ping = _ping_source(_Object(file, document, SOURCES), resolver, brokers, defaults)
            if ping.key in pings:
                raise ManifestError(f"{file}: PingSource {ping.key} is defined twice (also in {pings[ping.key].file})")
            pings[ping.key] = ping
        elif document["kind"] == "KafkaSource":
            kafka = _kafka_source(_Object(file, document, SOURCES_V1BETA1), resolver, defaults)
            if kafka.key in kafkas:
                raise ManifestError(f"{file}: KafkaSource {kafka.key} is defined twice"
                                    f" (also in {kafkas[kafka.key].file})")
            kafkas[kafka.key] = kafka
    subscriptions = {t.subscription.key: t.subscription for t in triggers.values()}
    subscriptions.update({p.subscription.key: p.subscription for p in pings.values() if p.subscription})
    subscriptions.update({k.subscription.key: k.subscription for k in kafkas.values()})
    return Topology(brokers, triggers, list(pings.values()), subscriptions, tuple(files),
                    tuple(kafkas.values()))


# -- objects -------------------------------------------------------------------------------


class _Object:
    """One manifest document with error reporting that names file, object and field."""

    def __init__(self, file: str, document: dict, api_version: str) -> None:
        self.file = file
        self.kind = document["kind"]
        metadata = document.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
            raise ManifestError(f"{file}: {self.kind} without metadata.name")
        self.name = metadata["name"]
        namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
        if not isinstance(namespace, str) or not namespace:
            self.namespace = DEFAULT_NAMESPACE
            self.fail("metadata.namespace", "must be a non-empty string")
        self.namespace = namespace
        self.annotations = metadata.get("annotations") or {}
        if document.get("apiVersion") != api_version:
            self.fail("apiVersion", f"{document.get('apiVersion')!r} is not supported, use {api_version}")
        spec = document.get("spec", {})
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            self.fail("spec", "must be a map")
        self.spec: dict = spec

    def fail(self, field_path: str, message: str) -> None:
        raise ManifestError(f"{self.file}: {self.kind} {self.namespace}/{self.name}: {field_path}: {message}")

    def only(self, mapping: Mapping, path: str, allowed: Sequence[str]) -> None:
        for key in mapping:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown field (known: {', '.join(allowed)})")


def _broker(obj: _Object, resolver: _Resolver) -> Broker:
    obj.only(obj.spec, "spec", ("config", "delivery"))
    delivery = _delivery_spec(obj, obj.spec.get("delivery"), "spec.delivery", resolver)
    return Broker(obj.namespace, obj.name, obj.file, delivery)


def _trigger(obj: _Object, resolver: _Resolver, brokers: Mapping[str, Broker], defaults: Defaults) -> Trigger:
    spec = obj.spec
    obj.only(spec, "spec", ("broker", "filter", "filters", "subscriber", "delivery"))
    broker_name = spec.get("broker", "default")
    if not isinstance(broker_name, str) or not broker_name:
        obj.fail("spec.broker", "must be a broker name")
    broker = brokers.get(f"{obj.namespace}/{broker_name}")
    if broker is None:
        obj.fail("spec.broker", f"no Broker {obj.namespace}/{broker_name} in the manifests")
    assert broker is not None
    predicate, text = _trigger_filter(obj)
    if "subscriber" not in spec:
        obj.fail("spec.subscriber", "is required")
    destination = resolver.destination(obj, spec["subscriber"], "spec.subscriber")
    written = _delivery_spec(obj, spec.get("delivery"), "spec.delivery", resolver)
    delivery = _effective((written or DeliverySpec()).over(broker.delivery), defaults)
    key = f"{obj.namespace}/{obj.name}"
    subscription = Subscription(key, destination, delivery, broker.key)
    return Trigger(obj.namespace, obj.name, obj.file, broker.key, predicate, text, subscription)


def _trigger_filter(obj: _Object) -> tuple[filters.Filter, str]:
    spec = obj.spec
    try:
        # Knative evaluates `filters` when set and then ignores the legacy `filter`.
        if spec.get("filters"):
            return filters.from_list(spec["filters"], "spec.filters"), _describe(spec["filters"])
        legacy = spec.get("filter")
        if legacy is None:
            return filters.match_all, "(all events)"
        if not isinstance(legacy, dict):
            obj.fail("spec.filter", "must be a map with `attributes`")
        obj.only(legacy, "spec.filter", ("attributes",))
        attributes = legacy.get("attributes")
        text = _describe(attributes) if attributes else "(all events)"
        return filters.legacy(attributes, "spec.filter.attributes"), text
    except filters.FilterError as error:
        obj.fail(error.path, str(error).split(": ", 1)[1])
        raise  # unreachable: fail raises


def _ping_source(obj: _Object, resolver: _Resolver, brokers: Mapping[str, Broker], defaults: Defaults) -> PingSource:
    spec = obj.spec
    obj.only(spec, "spec", ("schedule", "timezone", "contentType", "data", "dataBase64", "sink", "ceOverrides"))
    timezone = spec.get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        obj.fail("spec.timezone", "must be a time zone name such as Europe/Rome")
    try:
        schedule = cron.parse(spec.get("schedule", ""), timezone)
    except cron.CronError as error:
        obj.fail("spec.schedule", str(error))
    content_type = spec.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        obj.fail("spec.contentType", "must be a media type string")
    data: bytes | None = None
    if "data" in spec and "dataBase64" in spec:
        obj.fail("spec.data", "set either data or dataBase64, not both")
    if "data" in spec:
        if not isinstance(spec["data"], str):
            obj.fail("spec.data", "must be a string (the event's data as text)")
        data = spec["data"].encode("utf-8")
    elif "dataBase64" in spec:
        try:
            data = base64.b64decode(spec["dataBase64"], validate=True)
        except (ValueError, TypeError):
            obj.fail("spec.dataBase64", "is not valid base64")
    extensions = _ce_overrides(obj, spec.get("ceOverrides"))
    if "sink" not in spec:
        obj.fail("spec.sink", "is required")
    sink = resolver.destination(obj, spec["sink"], "spec.sink")
    subscription = None
    if sink.broker is not None:
        if sink.broker not in brokers:
            obj.fail("spec.sink.ref", f"no Broker {sink.broker} in the manifests")
    else:
        delivery = _effective(DeliverySpec(retry=defaults.ping_retry), defaults)
        subscription = Subscription(f"pingsource:{obj.namespace}/{obj.name}", sink, delivery, None)
    return PingSource(obj.namespace, obj.name, obj.file, schedule, content_type, data, extensions, sink, subscription)


_KAFKA_FIELDS = ("consumers", "bootstrapServers", "net", "topics", "consumerGroup",
                 "initialOffset", "delivery", "ordering", "sink", "ceOverrides")
_SERVER = re.compile(r"[^\s:,]+:[0-9]+")
_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
_GROUPS = uuid.UUID("0b6f4f2e-8d1c-4a57-9a61-3c2f9e7d5a10")


def _kafka_source(obj: _Object, resolver: _Resolver, defaults: Defaults) -> KafkaSource:
    # `net` (TLS, SASL) is production's business: the local broker is plain loopback.
    spec = obj.spec
    obj.only(spec, "spec", _KAFKA_FIELDS)
    servers = spec.get("bootstrapServers")
    if not isinstance(servers, list) or not servers or not all(
            isinstance(s, str) and _SERVER.fullmatch(s) for s in servers):
        obj.fail("spec.bootstrapServers", "must be a non-empty list of host:port")
    topics = spec.get("topics")
    if not isinstance(topics, list) or not topics or not all(
            isinstance(t, str) and _TOPIC.fullmatch(t) for t in topics):
        obj.fail("spec.topics", "must be a non-empty list of topic names ([a-zA-Z0-9._-])")
    # Knative names an unset group once, at random, and keeps it; here: stable per source.
    named = uuid.uuid5(_GROUPS, f"{obj.namespace}/{obj.name}")
    group = spec.get("consumerGroup") or f"knative-kafka-source-{named}"
    if not isinstance(group, str):
        obj.fail("spec.consumerGroup", "must be a string")
    initial = spec.get("initialOffset", "latest")  # Knative's default
    if initial not in ("earliest", "latest"):
        obj.fail("spec.initialOffset", f"must be earliest or latest, got {initial!r}")
    ordering = spec.get("ordering", "ordered")
    if ordering not in ("ordered", "unordered"):
        obj.fail("spec.ordering", f"must be ordered or unordered, got {ordering!r}")
    consumers = spec.get("consumers", 1)
    if not isinstance(consumers, int) or isinstance(consumers, bool) or consumers < 1:
        obj.fail("spec.consumers", f"must be a positive integer, got {consumers!r}")
    if "sink" not in spec:
        obj.fail("spec.sink", "is required")
    sink = resolver.destination(obj, spec["sink"], "spec.sink")
    written = _delivery_spec(obj, spec.get("delivery"), "spec.delivery", resolver)
    subscription = Subscription(f"kafkasource:{obj.namespace}/{obj.name}", sink,
                                _effective(written or DeliverySpec(), defaults), None)
    return KafkaSource(obj.namespace, obj.name, obj.file, tuple(servers), tuple(topics), group,
                       initial, ordering == "ordered", consumers,
                       _ce_overrides(obj, spec.get("ceOverrides")), subscription)


def _ce_overrides(obj: _Object, overrides: Any) -> dict[str, str]:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        obj.fail("spec.ceOverrides", "must be a map with `extensions`")
    obj.only(overrides, "spec.ceOverrides", ("extensions",))
    extensions = overrides.get("extensions") or {}
    if not isinstance(extensions, dict):
        obj.fail("spec.ceOverrides.extensions", "must be a map of name to string")
    result: dict[str, str] = {}
    for name, value in extensions.items():
        if not isinstance(name, str) or not name.isascii() or not name.isalnum() or name != name.lower():
            obj.fail(f"spec.ceOverrides.extensions.{name}", "extension names are lower-case alphanumerics")
        result[name] = str(value)
    return result


def _delivery_spec(obj: _Object, raw: Any, path: str, resolver: _Resolver) -> DeliverySpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        obj.fail(path, "must be a map")
    # retryAfterMax and format are Knative options the local router does not implement.
    obj.only(raw, path, ("retry", "backoffPolicy", "backoffDelay", "timeout", "deadLetterSink", "retryAfterMax", "format"))
    retry = raw.get("retry")
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool) or retry < 0):
        obj.fail(f"{path}.retry", f"must be a non-negative integer, got {retry!r}")
    policy = raw.get("backoffPolicy")
    if policy is not None and policy not in ("linear", "exponential"):
        obj.fail(f"{path}.backoffPolicy", f"must be linear or exponential, got {policy!r}")
    delay = _duration(obj, raw, "backoffDelay", path)
    timeout = _duration(obj, raw, "timeout", path)
    if timeout is not None and timeout <= 0:
        obj.fail(f"{path}.timeout", "must be longer than zero")
    dead_letter = None
    if raw.get("deadLetterSink") is not None:
        dead_letter = resolver.destination(obj, raw["deadLetterSink"], f"{path}.deadLetterSink")
    return DeliverySpec(retry, policy, delay, timeout, dead_letter)


def _duration(obj: _Object, raw: Mapping, name: str, path: str) -> float | None:
    if raw.get(name) is None:
        return None
    try:
        return durations.parse_seconds(raw[name])
    except ValueError as error:
        obj.fail(f"{path}.{name}", str(error))
        raise  # unreachable


def _effective(spec: DeliverySpec, defaults: Defaults) -> Delivery:
    return Delivery(
        retry=spec.retry if spec.retry is not None else 0,
        backoff_policy=spec.backoff_policy or "exponential",
        backoff_delay=spec.backoff_delay if spec.backoff_delay is not None else defaults.backoff_delay,
        timeout=spec.timeout if spec.timeout is not None else defaults.timeout,
        dead_letter=spec.dead_letter,
    )


def _describe(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


class _Resolver:
    """Destinations (`ref` and/or `uri`) to URLs of the local stack."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def destination(self, obj: _Object, raw: Any, path: str) -> Destination:
        if not isinstance(raw, dict):
            obj.fail(path, "must be a map with `ref` and/or `uri`")
        obj.only(raw, path, ("ref", "uri", "CACerts", "audience"))
        ref, uri = raw.get("ref"), raw.get("uri")
        if ref is None and uri is None:
            obj.fail(path, "needs `ref` or `uri`")
        if uri is not None and not isinstance(uri, str):
            obj.fail(f"{path}.uri", "must be a string")
        if ref is None:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                obj.fail(f"{path}.uri", f"{uri!r} is not an absolute http(s) URL")
            return Destination(uri, uri)
        base = self._ref(obj, ref, f"{path}.ref")
        if uri:
            # Knative: with both, `uri` is resolved relative to the ref's address.
            if urlsplit(uri).scheme:
                obj.fail(f"{path}.uri", "must be a relative path when `ref` is set")
            return replace(base, url=base.url.rstrip("/") + "/" + uri.lstrip("/"), description=f"{base.description} + {uri}")
        return base

    def _ref(self, obj: _Object, ref: Any, path: str) -> Destination:
        if not isinstance(ref, dict):
            obj.fail(path, "must be a map with apiVersion, kind and name")
        obj.only(ref, path, ("apiVersion", "kind", "name", "namespace"))
        kind, api, name = ref.get("kind"), ref.get("apiVersion"), ref.get("name")
        if not isinstance(name, str) or not name:
            obj.fail(f"{path}.name", "is required")
        namespace = ref.get("namespace") or obj.namespace
        if kind == "Service" and api in (SERVING, "v1"):
            if name not in FUNCTIONS:
                obj.fail(f"{path}.name", f"Service {name!r} is not a function of the local stack (functions.FUNCTIONS: {', '.join(FUNCTIONS)})")
            return Destination(self.layout.function_url(name), f"Service/{name}")
        if kind == "Broker" and api == EVENTING:
            return Destination(f"{self.layout.router_url}/{namespace}/{name}", f"Broker/{namespace}/{name}", broker=f"{namespace}/{name}")
        obj.fail(path, f"cannot resolve {api}/{kind} locally (supported: {SERVING} Service, {EVENTING} Broker)")
        raise AssertionError  # unreachable
