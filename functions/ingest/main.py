"""ingest: `file.arrived` -> checked, archived, catalogued product (`product.ingested`;
with `product.packaged` and `product.published` when ingest packages it itself), or
quarantine (`file.rejected`). A PingSource tick sweeps SAFE folders left incomplete,
announces inbox objects whose storage notification was lost, re-sends journal events left
unsent and pushes on products stalled between stages (shared.pipeline.ingestion.stalled)."""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from events import envelope, types
from events.files import FileArrived
from shared.adapters import outbox
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry import metrics
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline.ingestion import ingest, reconcile
from shared.pipeline.ingestion.stalled import resend_stalled

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment(scanner=True)
metrics.outcomes_known(outcome.value for outcome in ingest.Outcome)

log = logging.getLogger("auxip.ingest")


@functions_framework.cloud_event
@instrumented("ingest")
def handle(event: CloudEvent) -> None:
    rt = current()
    if event["type"] == types.PING:
        results = ingest.sweep_folders(rt, rt.settings.safe_folder_grace_s, event["id"])
        announced = reconcile.reconcile_inbox(rt, rt.settings.inbox_reconcile_age_s)
        outbox.send_pending(rt.pool, rt.settings.broker_url)
        stalled = resend_stalled(rt.pool, rt.settings.broker_url,
                                 after_s=rt.settings.stalled_after_s,
                                 max_resends=rt.settings.stalled_resends)
        log.info("sweep: %d folder(s) quarantined, %d forgotten object(s) announced,"
                 " %d stalled product(s) pushed on", len(results), len(announced), len(stalled))
        return
    arrived = envelope.data_of(event, FileArrived)
    result = ingest.ingest(rt, arrived, event["id"])
    metrics.file_ingested(result.outcome.value)
    log.info("%s: %s %s", result.name, result.outcome.value, result.detail)
