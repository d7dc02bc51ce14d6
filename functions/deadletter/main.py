"""deadletter: the Broker's deadLetterSink. Every event whose delivery failed after its
retries is recorded with the error, for operators to inspect and replay."""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from shared.catalogue import dead_letters
from shared.runtime import current

log = logging.getLogger("auxip.deadletter")


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    with current().pool.connection() as conn, conn.transaction():
        fresh = dead_letters.record(conn, event)
    log.warning("dead letter %s %s for %s (%s)", event["type"], event["id"],
                event.get(dead_letters.DESTINATION), "new" if fresh else "again")
