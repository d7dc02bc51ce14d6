"""route: `product.published` -> the product copied to the target of every route whose
rule it matches, verified there, recorded in `transfers` (shared.pipeline.routing.transfers).
A PingSource tick retries the pending transfers that are due."""

from __future__ import annotations

import logging
import os
from collections import Counter
from functools import cache

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope, types
from events.products import ProductPublished
from shared.adapters import outbox
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline.routing import transfers
from shared.pipeline.routing.settings import RoutingSettings

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.route")


@cache
def _settings() -> RoutingSettings:
    return RoutingSettings()


@functions_framework.cloud_event
@instrumented("route")
def handle(event: CloudEvent) -> None:
    rt = current()
    if event["type"] == types.PING:
        outcomes = transfers.sweep(rt, os.environ, _settings())
        outbox.send_pending(rt.pool, rt.settings.broker_url)
        if outcomes:
            log.info("sweep: %s", dict(Counter(o.status for o in outcomes)))
        return
    published = envelope.data_of(event, ProductPublished)
    outcomes = transfers.route_published(rt, published, os.environ, _settings())
    log.info("%s: %s", published.name,
             ", ".join(f"{o.route} {o.status}" for o in outcomes) or "no route wants it")
