"""evict: an hourly PingSource tick -> every published product past its EvictionDate goes
offline, its bytes leave the archive, `product.evicted` is sent (shared.pipeline.eviction)."""

from __future__ import annotations

import logging
from collections import Counter

import functions_framework
from cloudevents.http import CloudEvent

from events import types
from shared.adapters import outbox
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline import eviction

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.evict")


@functions_framework.cloud_event
@instrumented("evict")
def handle(event: CloudEvent) -> None:
    if event["type"] != types.PING:
        # Only the PingSource targets this Service; anything else is a misrouted event,
        # answered 2xx so the broker does not retry it.
        log.info("ignored %s event %s: evict runs on its PingSource tick", event["type"],
                 event["id"])
        return
    rt = current()
    evicted = eviction.evict_due(rt)
    # Events a crash (or a broker that was down) left in the journal go now.
    outbox.send_pending(rt.pool, rt.settings.broker_url)
    if evicted:
        by_type = Counter(e.product_type for e in evicted)
        log.info("evicted %d product(s): %s", len(evicted), dict(sorted(by_type.items())))
    else:
        log.info("nothing to evict")
