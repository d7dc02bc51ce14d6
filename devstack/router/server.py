"""The running router: ingress, dispatcher, PingSource scheduler, KafkaSource consumers and
housekeeping around one PostgreSQL pool. `python -m devstack.router` runs one; tests run one
in-process."""

from __future__ import annotations

import threading
import time

from devstack.layout import Layout
from devstack.router import dispatch, logs, manifests
from devstack.router.ingress import IngressServer
from devstack.router.kafka_consumer import KafkaSourceMember
from devstack.router.ping import PingScheduler
from devstack.router.settings import RouterSettings
from devstack.router.store import Store, new_instance, open_pool
from devstack.router.topology import Broker, Defaults, Topology
from devstack.router.wire import Event
from shared.adapters.catalogue.migrations import upgrade

HOUSEKEEPING_S = 5.0
PURGE_EVERY_S = 600.0


def load_topology(settings: RouterSettings) -> Topology:
    defaults = Defaults(
        timeout=settings.router_attempt_timeout_s, backoff_delay=settings.router_backoff_delay_s
    )
    return manifests.load(settings.manifests_dir(), Layout(settings.port_base), defaults)


class RouterServer:
    def __init__(self, settings: RouterSettings, topology: Topology | None = None, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.topology = topology if topology is not None else load_topology(settings)
        self.instance = new_instance()
        self.host = host
        self.port = Layout(settings.port_base).router_port
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        upgrade(self.settings.database_url)
        # Bind first: a router that cannot listen must not start claiming deliveries.
        self.ingress = IngressServer(
            (self.host, self.port), self.topology, self.ingest, self.healthy, self.settings.router_max_body_bytes
        )
        self.port = self.ingress.server_address[1]
        self.pool = open_pool(self.settings.database_url, self.instance, self.settings.router_db_pool)
        self.store = Store(self.pool, self.instance)
        reclaimed = self.store.reclaim_orphans()
        self.dispatcher = dispatch.Dispatcher(
            self.store,
            self.topology,
            workers=self.settings.router_workers,
            poll_s=self.settings.router_poll_s,
            database_url=self.settings.database_url,
        )
        self.dispatcher.start()
        self.pings = PingScheduler(self.store, self.topology, self.dispatcher.kick)
        self.pings.start()
        self.kafka = self._kafka_members()
        for member in self.kafka:
            member.start()
        # A short poll interval only bounds how long stop() waits for the accept loop.
        self._spawn(lambda: self.ingress.serve_forever(poll_interval=0.05), "router-ingress")
        self._spawn(self._housekeeping, "router-housekeeping")
        logs.info(
            "router started", url=self.url, instance=self.instance, workers=self.settings.router_workers,
            triggers=len(self.topology.triggers), pingsources=len(self.topology.ping_sources),
            kafkasources=len(self.topology.kafka_sources), reclaimed=reclaimed,
        )

    def stop(self) -> None:
        self._stop.set()
        self.ingress.shutdown()
        self.ingress.server_close()
        for member in self.kafka:  # first: they finish deliveries with the dispatcher's sender
            member.stop()
        self.pings.stop()
        self.dispatcher.stop()
        self.pool.close()
        logs.info("router stopped", instance=self.instance)

    def ingest(self, event: Event, broker: Broker) -> int:
        targets = self.topology.route(broker.key, event.attributes)
        fields = {"event_id": event.id, "type": event.type, "subject": event.subject, "broker": broker.key}
        if not targets:
            logs.info("event matched no trigger", **fields)
            return 0
        self.store.ingest(event, broker.key, targets, "ingress")
        self.dispatcher.kick()
        logs.info("event accepted", deliveries=len(targets), triggers=[t.key for t in targets], **fields)
        return len(targets)

    def _kafka_members(self) -> list[KafkaSourceMember]:
        settings = self.settings
        servers = settings.kafka_bootstrap_servers or Layout(settings.port_base).kafka_bootstrap
        return [
            KafkaSourceMember(
                source, servers, self.dispatcher.post, self.store,
                member=f"{self.instance}-{source.name}-{index}",
                workers=settings.router_workers,
                session_timeout_ms=settings.router_kafka_session_timeout_ms,
                commit_interval_s=settings.router_kafka_commit_interval_s,
            )
            for source in self.topology.kafka_sources
            for index in range(source.consumers)
        ]

    def healthy(self) -> bool:
        with self.pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
        return True

    def _spawn(self, target, name: str) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _housekeeping(self) -> None:
        last_purge = 0.0
        while not self._stop.wait(HOUSEKEEPING_S):
            try:
                if self.store.reclaim_orphans():
                    self.dispatcher.kick()
                if time.monotonic() - last_purge > PURGE_EVERY_S:
                    last_purge = time.monotonic()
                    self.store.purge(self.settings.router_retention_hours * 3600)
            except Exception:
                logs.exception("housekeeping failed")
