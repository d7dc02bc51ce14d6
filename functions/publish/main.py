"""publish: `product.packaged` -> online, with PublicationDate and EvictionDate
(`product.published`)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope
from events.products import ProductPackaged
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline import publication

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()


@functions_framework.cloud_event
@instrumented("publish")
def handle(event: CloudEvent) -> None:
    publication.publish(current(), envelope.data_of(event, ProductPackaged))
