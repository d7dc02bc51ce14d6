"""deadletter: the Broker's deadLetterSink. Every event whose delivery failed after its
retries is recorded with the error, for operators to inspect and replay."""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from shared.adapters.catalogue import dead_letters
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry import metrics
from shared.adapters.telemetry.instrument import instrumented

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.deadletter")


@functions_framework.cloud_event
@instrumented("deadletter")
def handle(event: CloudEvent) -> None:
    rt = current()
    with rt.pool.connection() as conn, conn.transaction():
        fresh = dead_letters.record(conn, event, rt.settings.dead_letter_attempts)
    if fresh:
        metrics.dead_lettered(event["type"])
    log.warning("dead letter %s %s for %s (%s)", event["type"], event["id"],
                event.get(dead_letters.DESTINATION), "new" if fresh else "again")
