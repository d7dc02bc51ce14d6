"""package: `product.ingested` -> distribution form in the archive (`product.packaged`)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope
from events.products import ProductIngested
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline import packaging

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()


@functions_framework.cloud_event
@instrumented("package")
def handle(event: CloudEvent) -> None:
    packaging.package(current(), envelope.data_of(event, ProductIngested))
