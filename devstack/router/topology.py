"""The router's topology: brokers, triggers, sources and where their deliveries go, with
the effective delivery policy of each (what manifests.py builds from the YAML; what the
dispatcher, the ingress, the ping scheduler and the store work from)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from devstack.router import cron, filters
from devstack.router.kafka_source import KafkaSource

PING_TYPE = "dev.knative.sources.ping"


@dataclass(frozen=True)
class Destination:
    url: str
    description: str  # what the manifest said, for --check and logs
    broker: str | None = None  # "namespace/name" when the destination is a Broker


@dataclass(frozen=True)
class DeliverySpec:
    """A `delivery` block as written: None where a field is unset."""

    retry: int | None = None
    backoff_policy: str | None = None
    backoff_delay: float | None = None
    timeout: float | None = None
    dead_letter: Destination | None = None

    def over(self, base: DeliverySpec | None) -> DeliverySpec:
        if base is None:
            return self
        return DeliverySpec(
            retry=self.retry if self.retry is not None else base.retry,
            backoff_policy=self.backoff_policy or base.backoff_policy,
            backoff_delay=self.backoff_delay if self.backoff_delay is not None else base.backoff_delay,
            timeout=self.timeout if self.timeout is not None else base.timeout,
            dead_letter=self.dead_letter or base.dead_letter,
        )


@dataclass(frozen=True)
class Delivery:
    """Effective delivery of one subscription."""

    retry: int
    backoff_policy: str
    backoff_delay: float
    timeout: float
    dead_letter: Destination | None

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry `retry_number` (1 for the first retry)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * retry_number
        return self.backoff_delay * 2**retry_number


@dataclass(frozen=True)
class Subscription:
    """Where deliveries of one Trigger (or one PingSource's direct sink) go."""

    key: str  # stored with each delivery: "namespace/trigger" or "pingsource:namespace/name"
    destination: Destination
    delivery: Delivery
    broker: str | None  # replies are ingested into this broker; None: replies ignored

    @property
    def url(self) -> str:
        return self.destination.url


@dataclass(frozen=True)
class Broker:
    namespace: str
    name: str
    file: str
    delivery: DeliverySpec | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Trigger:
    namespace: str
    name: str
    file: str
    broker: str  # key
    filter: filters.Filter = field(repr=False, compare=False)
    filter_text: str
    subscription: Subscription

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PingSource:
    namespace: str
    name: str
    file: str
    schedule: cron.Schedule
    content_type: str | None
    data: bytes | None
    extensions: Mapping[str, str]
    sink: Destination
    subscription: Subscription | None  # None when the sink is a Broker

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def source(self) -> str:
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


@dataclass(frozen=True)
class Topology:
    brokers: Mapping[str, Broker]
    triggers: Mapping[str, Trigger]
    ping_sources: Sequence[PingSource]
    subscriptions: Mapping[str, Subscription]
    files: Sequence[str] = ()
    kafka_sources: Sequence[KafkaSource] = ()

    def broker_for_path(self, path: str) -> Broker | None:
        """`/` is the default broker; `/<namespace>/<broker>` as Knative's ingress URL."""
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if not parts:
            return self.default_broker()
        if len(parts) == 2:
            return self.brokers.get(f"{parts[0]}/{parts[1]}")
        return None

    def default_broker(self) -> Broker | None:
        if len(self.brokers) == 1:
            return next(iter(self.brokers.values()))
        named = [b for b in self.brokers.values() if b.name == "default"]
        return named[0] if len(named) == 1 else None

    def route(self, broker: str, attributes: Mapping[str, str]) -> list[Subscription]:
        return [
            trigger.subscription
            for trigger in self.triggers.values()
            if trigger.broker == broker and trigger.filter(attributes)
        ]

    def lease_seconds(self) -> float:
        """How long a claimed delivery stays claimed: longer than any attempt may take."""
        timeouts = [s.delivery.timeout for s in self.subscriptions.values()] or [0.0]
        return max(timeouts) + 30.0


@dataclass(frozen=True)
class Defaults:
    timeout: float
    backoff_delay: float
    # PingSource has no delivery block; direct sinks get a few retries and no DLS.
    ping_retry: int = 3
