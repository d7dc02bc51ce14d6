"""ECS log lines: inside an invocation they name the event, the product and the trace, even
for lines written by modules that know nothing of events; outside, those fields are absent."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from events import envelope, types
from events.files import FileArrived
from shared.adapters.telemetry import logging as json_logs
from shared.adapters.telemetry.instrument import configure, instrumented

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_lines_carry_event_product_and_trace(tmp_path: Path) -> None:
    configure("probe")  # the once-per-process set-up first, so the stream below stays
    stream = (tmp_path / "probe.log").open("a")  # a real file: the writer process's path
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
        json_logs.flush_all()
        logging.getLogger().removeHandler(handler)
        handler.close()
        stream.close()
    before, during = (json.loads(line) for line in
                      (tmp_path / "probe.log").read_text().splitlines())
    assert "event" not in before and "trace" not in before and "auxip" not in before
    assert during["message"] == "working on it"
    assert during["log"]["logger"] == "shared.somewhere.deep"
    assert during["event"]["id"] == event["id"]
    assert during["auxip"]["event_type"] == types.FILE_ARRIVED
    assert during["auxip"]["product"] == "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
    assert during["trace"]["id"] == TRACE_ID  # the span continues the event's trace
    assert during["span"]["id"] != "00f067aa0ba902b7"  # ...as a child of the sender's span
    assert during["log.level"] == "warning" and during["service"]["name"] == "probe"
    assert during["@timestamp"].endswith("Z") and during["ecs.version"]
