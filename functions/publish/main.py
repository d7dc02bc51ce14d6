"""publish: `product.packaged` -> online, with PublicationDate and EvictionDate
(`product.published`)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope
from events.products import ProductPackaged
from shared import publication
from shared.runtime import current
from shared.telemetry.instrument import instrumented


@functions_framework.cloud_event
@instrumented("publish")
def handle(event: CloudEvent) -> None:
    publication.publish(current(), envelope.data_of(event, ProductPackaged))
