"""package: `product.ingested` -> distribution form in the archive (`product.packaged`)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope
from events.products import ProductIngested
from shared import packaging
from shared.runtime import current
from shared.telemetry.instrument import instrumented


@functions_framework.cloud_event
@instrumented("package")
def handle(event: CloudEvent) -> None:
    packaging.package(current(), envelope.data_of(event, ProductIngested))
