"""notify: `product.published` (and `product.evicted`) -> a POST to every running
Subscription that wants the product, retried, each attempt recorded (shared.pipeline.notifications).
Endpoints that keep failing are recorded `failed`; the event is not retried for them."""

from __future__ import annotations

import logging
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope, types
from events.products import ProductEvicted, ProductPublished
from shared.adapters.catalogue.subscriptions import CREATED, DELETED
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline import notifications

if TYPE_CHECKING:
    # Imported at start, httpx would come before `shared`, which keeps httpx's command-line
    # client out of every function (shared/__init__.py); notifications imports it after.
    import httpx

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.notify")


@cache
def _settings() -> notifications.NotifySettings:
    return notifications.NotifySettings()


@cache
def _http() -> httpx.Client:
    return notifications.client()


@functions_framework.cloud_event
@instrumented("notify")
def handle(event: CloudEvent) -> None:
    if event["type"] == types.PRODUCT_EVICTED:
        data: ProductPublished | ProductEvicted = envelope.data_of(event, ProductEvicted)
        kind = DELETED
    else:
        data = envelope.data_of(event, ProductPublished)
        kind = CREATED
    done = notifications.notify(current().pool, _settings(), kind, data.product_id,
                                http=_http())
    outcomes = Counter(d.outcome for d in done)
    log.info("%s %s: %s", kind, data.name, dict(outcomes) or "no subscription wants it")
