"""PingSource: emit `dev.knative.sources.ping` events on each source's cron schedule.

The event is what Knative's PingSource adapter sends: type dev.knative.sources.ping, source
/apis/v1/namespaces/<ns>/pingsources/<name>, a fresh id, time = the tick, data and
datacontenttype from the manifest, ceOverrides extensions. A sink that is a Broker gets the
event routed through its Triggers; any other sink gets a direct delivery (with a few
retries, no dead-letter sink: PingSource has no delivery options).

Each tick is recorded in router.ping_ticks with the event, so a tick is emitted once even
with two routers running or a restart within the same minute. Ticks missed while the router
was down are not caught up (neither does Knative).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from devstack.router import logs
from devstack.router.store import Store
from devstack.router.topology import PING_TYPE, PingSource, Topology
from devstack.router.wire import Event

Now = Callable[[], datetime]


def event_for(source: PingSource, tick: datetime) -> Event:
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source.source,
        "type": PING_TYPE,
        "time": tick.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if source.content_type:
        attributes["datacontenttype"] = source.content_type
    attributes.update(source.extensions)
    return Event(attributes, source.data)


def emit(store: Store, topology: Topology, source: PingSource, tick: datetime) -> bool:
    """Store the tick's event and its deliveries; False when this tick was already emitted
    (or routes nowhere)."""
    event = event_for(source, tick)
    if source.subscription is not None:
        broker, targets = "", [source.subscription]
    else:
        assert source.sink.broker is not None
        broker, targets = source.sink.broker, topology.route(source.sink.broker, event.attributes)
        if not targets:
            logs.info("ping matched no trigger", pingsource=source.key, event_id=event.id)
            return False
    emitted = store.ingest_tick(source.key, tick, event, broker, targets)
    if emitted:
        logs.info("ping emitted", pingsource=source.key, event_id=event.id, type=PING_TYPE,
                  tick=event.attributes["time"], deliveries=len(targets))
    return emitted


class PingScheduler:
    def __init__(
        self,
        store: Store,
        topology: Topology,
        on_emitted: Callable[[], None],
        now: Now = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.topology = topology
        self.on_emitted = on_emitted
        self.now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.topology.ping_sources:
            return
        self._thread = threading.Thread(target=self._run, name="router-ping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        start = self.now()
        upcoming = {source.key: source.schedule.next_after(start) for source in self.topology.ping_sources}
        by_key = {source.key: source for source in self.topology.ping_sources}
        while not self._stop.is_set():
            key = min(upcoming, key=lambda k: upcoming[k])
            tick = upcoming[key]
            wait = (tick - self.now()).total_seconds()
            if wait > 0:
                self._stop.wait(min(wait, 60.0))  # re-check the clock at least every minute
                continue
            source = by_key[key]
            try:
                if emit(self.store, self.topology, source, tick):
                    self.on_emitted()
            except Exception:
                logs.exception("ping not emitted", pingsource=key, tick=tick.isoformat())
            upcoming[key] = source.schedule.next_after(tick)
