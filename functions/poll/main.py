"""poll: a PingSource tick -> every enabled source that is due is listed, and its new files
copied into the inbox and announced with `file.arrived` (shared.pipeline.routing.polling).

The tick's data may name sources, `{"sources": ["adgs"]}`, to poll only those (one
PingSource per schedule); without it every enabled source is considered."""

from __future__ import annotations

import logging
import os

import functions_framework
from cloudevents.http import CloudEvent

from shared.adapters import outbox
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline.routing import polling

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.poll")


@functions_framework.cloud_event
@instrumented("poll")
def handle(event: CloudEvent) -> None:
    rt = current()
    data = event.data if isinstance(event.data, dict) else {}
    only = data.get("sources")
    results = polling.poll_all(rt, os.environ,
                               only=[str(n) for n in only] if isinstance(only, list) else None)
    # Events a crash (or a broker that was down) left in the journal go now.
    outbox.send_pending(rt.pool, rt.settings.broker_url)
    for result in results:
        if result.status in ("polled", "error"):
            log.info("%s: %s, %d fetched, %d already seen, %d failed %s", result.source,
                     result.status, result.fetched, result.skipped, result.failed,
                     result.detail)
