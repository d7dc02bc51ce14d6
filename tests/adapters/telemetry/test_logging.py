"""JSON log lines: every line has the same keys; inside an invocation they name the event,
the product and the trace, even for lines written by modules that know nothing of events."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from events import envelope, types
from events.files import FileArrived
from shared.adapters.telemetry import logging as json_logs
from shared.adapters.telemetry.instrument import configure, instrumented

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_lines_carry_event_product_and_trace() -> None:
    configure("probe")  # the once-per-process set-up first, so the stream below stays
    stream = io.StringIO()
    handler = json_logs.configure("probe", stream=stream)
    deep = logging.getLogger("shared.somewhere.deep")

    @instrumented("probe")
    def handle(event: object) -> None:
        deep.warning("working on it")

    event = envelope.build(
        types.FILE_ARRIVED,
        FileArrived(bucket="inbox", key="in/S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
                    "/manifest.safe", size=1, arrived_at=datetime.now(UTC)),
        source="/test", subject="in/S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
                               "/manifest.safe",
        extensions={"traceparent": TRACEPARENT})
    try:
        deep.warning("before")
        handle(event)
    finally:
        logging.getLogger().removeHandler(handler)
    before, during = (json.loads(line) for line in stream.getvalue().splitlines())
    assert before["event_id"] is None and before["trace_id"] is None  # same keys, always
    assert during["message"] == "working on it" and during["logger"] == "shared.somewhere.deep"
    assert during["event_id"] == event["id"]
    assert during["event_type"] == types.FILE_ARRIVED
    assert during["product"] == "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
    assert during["trace_id"] == TRACE_ID  # the span continues the event's trace
    assert during["span_id"] != "00f067aa0ba902b7"  # ...as a child of the sender's span
    assert during["level"] == "warning" and during["service"] == "probe"
