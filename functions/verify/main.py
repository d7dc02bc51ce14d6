"""verify: a PingSource tick (every five minutes) -> the next slice of the scrub of
catalogue against archive (shared.pipeline.integrity.scrub: up to AUXIP_VERIFY_BUDGET of the
catalogue's objects, from where the last tick stopped, listed; a random sample's bytes read;
orphans), and, unless the tick's data says `"repair": false`, what can be brought back
without an operator is: a distribution object packaged again from its ingested copy, a
polled product fetched again from its source. Findings are logged as errors and counted
(`auxip_archive_disagreements_total{found_by="verify"}`); `auxip products verify` is the
same scrub by hand, of the whole archive at once, with `--full` and `--mark-offline`."""

from __future__ import annotations

import logging
import os
from collections import Counter

import functions_framework
from cloudevents.http import CloudEvent

from events import types
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry.instrument import instrumented
from shared.pipeline.integrity import repair, scrub

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.verify")


@functions_framework.cloud_event
@instrumented("verify")
def handle(event: CloudEvent) -> None:
    if event["type"] != types.PING:
        # Only the PingSource targets this Service; anything else is a misrouted event,
        # answered 2xx so the broker does not retry it.
        log.info("ignored %s event %s: verify runs on its PingSource tick", event["type"],
                 event["id"])
        return
    rt = current()
    data = event.data if isinstance(event.data, dict) else {}
    report = scrub.scrub_next(rt, budget=rt.settings.verify_budget,
                              sample=rt.settings.verify_sample)
    kinds = dict(Counter(f.kind for f in report.findings))
    log.info("scrub of the keys after %r: %d product(s), %d object(s), %d read (%d bytes)"
             " in %.1f s: %s; %s", report.after, report.products, report.objects,
             report.objects_read, report.bytes_read, report.seconds,
             kinds or "catalogue and archive agree",
             f"next after {report.resume_after!r}" if report.resume_after
             else "pass complete")
    if report.damaged_products() and data.get("repair", True) is not False:
        for done in repair.repair(rt, report, os.environ):
            log.warning("%s: %s (%s)", done.name, done.action, done.detail)
