"""One file, one trace: inbox-adapter -> ingest -> publish (an orbit file is served as it
arrived: ingest packages it and journals its product.packaged), each function run by
functions-framework in-process, the traceparent travelling only inside the CloudEvents the
functions journal (as the broker would carry them). Spans go to the in-memory exporter."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack import demo_products
from events import bindings, types
from shared.adapters import outbox, storage
from shared.adapters.settings import Settings
from shared.adapters.telemetry import logging as json_logs
from shared.adapters.telemetry import tracing
from tests.adapters.telemetry.conftest import client


def _journalled(settings: Settings, event_type: str) -> dict:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        [row] = conn.execute("SELECT * FROM event_journal WHERE type = %s",
                             (event_type,)).fetchall()
    return row


def _deliver(folder: str, row: dict) -> None:
    headers, body = bindings.to_http_binary(outbox.event_from_row(row))
    answer = client(folder).post("/", headers=headers, data=body)
    assert answer.status_code == 200, answer.text


@pytest.mark.usefixtures("function_env")
def test_one_file_is_one_trace_across_every_stage(settings: Settings, s3: object) -> None:
    exporter = tracing.in_memory()
    name, body = demo_products.orbit_eof("A", "AUX_RESORB", datetime(2025, 3, 1, tzinfo=UTC),
                                         datetime(2025, 3, 1, 3, tzinfo=UTC),
                                         datetime(2025, 3, 1, 4, tzinfo=UTC), max_vectors=4)
    etag = storage.put_bytes(s3, settings.inbox_bucket, name, body)
    notification = {"Records": [{
        "eventVersion": "2.2", "eventSource": "ceph:s3", "eventName": "ObjectCreated:Put",
        "eventTime": datetime.now(UTC).isoformat(),
        "s3": {"bucket": {"name": settings.inbox_bucket},
               "object": {"key": name, "size": len(body), "eTag": etag}}}]}
    adapter = client("inbox_adapter", "http")
    answer = adapter.post("/", data=json.dumps(notification),
                          headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text

    log_lines = io.StringIO()
    capture = logging.StreamHandler(log_lines)
    capture.setFormatter(json_logs.EcsFormatter("test"))
    logging.getLogger().addHandler(capture)
    try:
        _deliver("ingest", _journalled(settings, types.FILE_ARRIVED))
    finally:
        logging.getLogger().removeHandler(capture)
    _deliver("publish", _journalled(settings, types.PRODUCT_PACKAGED))
    published = _journalled(settings, types.PRODUCT_PUBLISHED)

    spans = {s.name: s for s in exporter.get_finished_spans()
             if s.name in ("inbox-adapter", "ingest", "package", "publish")}
    assert set(spans) == {"inbox-adapter", "ingest", "publish"}
    trace_ids = {s.context.trace_id for s in spans.values()}
    assert len(trace_ids) == 1, "the stages are not one trace"
    assert spans["inbox-adapter"].parent is None  # the notification carried no trace: a root
    for child, parent in (("ingest", "inbox-adapter"), ("publish", "ingest")):
        assert spans[child].parent.span_id == spans[parent].context.span_id
    trace_id = f"{trace_ids.pop():032x}"
    assert tracing.trace_id_of(published["extensions"]["traceparent"]) == trace_id
    assert spans["publish"].attributes["auxip.product"] == name

    # The real ingest function's own log line names the event, the product and the trace.
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    [outcome] = [line for line in lines if line["log"]["logger"] == "auxip.ingest"]
    assert outcome["message"].startswith(f"{name}: ingested")
    arrived = _journalled(settings, types.FILE_ARRIVED)
    assert (outcome["event"]["id"], outcome["auxip"]["product"], outcome["trace"]["id"]) == (
        arrived["id"], name, trace_id)

    page = client("publish").get("/metrics").get_data(as_text=True)
    assert 'auxip_files_out_total{product_type="AUX_RESORB"}' in page
    assert 'auxip_timeliness_seconds_count{product_type="AUX_RESORB"}' in page
    assert 'auxip_invocations_total{function="ingest",outcome="ok"}' in page
