"""route: `product.published` -> the product copied to the target of every route whose
rule it matches, verified there, recorded in `transfers` (shared.routing.transfers).
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
from shared import outbox
from shared.routing import transfers
from shared.routing.settings import RoutingSettings
from shared.runtime import current
from shared.telemetry.instrument import instrumented

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
