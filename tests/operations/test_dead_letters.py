"""A handler that always fails: the router retries it as the Broker's delivery says, then
hands the event to the dead-letter sink (the deadletter function records it); once the
cause is fixed, `auxip deadletters replay` publishes the product."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from devstack import demo_products
from devstack.stack import processes
from devstack.stack.up import StackInfo
from events import types
from shared.adapters import runtime, storage
from shared.adapters.settings import Settings
from shared.adapters.telemetry import tracing
from shared.pipeline.ingestion.stalled import resend_stalled
from tests.adapters.telemetry.ecs_lines import SecurityStream
from tests.operations.conftest import RETRIES, cli, execute, query, wait_until

# The cause: the catalogue refuses every publication, so publish fails (500) each time.
REFUSE = """
CREATE FUNCTION auxip_test_refuse_publication() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'publication refused (test)'; END $$;
CREATE TRIGGER auxip_test_refuse_publication BEFORE UPDATE OF status ON products
FOR EACH ROW WHEN (NEW.status = 'published') EXECUTE FUNCTION auxip_test_refuse_publication();
"""
FIX = "DROP FUNCTION IF EXISTS auxip_test_refuse_publication() CASCADE"


def _log_size(settings: Settings) -> int:
    path = processes.log_path(settings.state_dir, "publish")
    return path.stat().st_size if path.exists() else 0


def _failures_logged(settings: Settings, event_id: str, offset: int) -> list[dict]:
    """publish's failure lines for `event_id` written past `offset` (the log outlives runs)."""
    with processes.log_path(settings.state_dir, "publish").open("rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", "replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("event", {}).get("id") == event_id
            and e["message"].startswith("publish failed")]


def _dead_lettered_safe(s: Settings, unit: str, start: datetime) -> str:
    """Upload a SAFE folder (packaged by package, published by publish: a product ingest
    packages is published in ingest's own INSERT) while REFUSE holds; its name once its
    product.packaged event is in the dead letters."""
    folder, content = demo_products.aux_safe(unit, "AUX_CAL", start, start - timedelta(days=3))
    client = storage.client(s)
    for path, body in sorted(content.items()):
        storage.put_bytes(client, s.inbox_bucket, f"{folder}/{path}", body)
    wait_until("the packaged event to reach the dead letters",
               lambda: len(query(s, "SELECT 1 FROM dead_letters")) == 1,
               report=lambda: query(s, "SELECT name, status FROM products"))
    return f"{folder}.zip"


def test_failing_handler_dead_letters_then_replay_publishes(
        fresh: StackInfo, security_events: SecurityStream) -> None:
    s = fresh.settings
    offset = _log_size(s)
    execute(s, FIX)
    execute(s, REFUSE)
    try:
        name = _dead_lettered_safe(s, "A", datetime(2025, 7, 1, tzinfo=UTC))
    finally:
        execute(s, FIX)
    [packaged] = query(s, "SELECT id, extensions FROM event_journal WHERE type = %s",
                       types.PRODUCT_PACKAGED)
    [letter] = query(s, "SELECT * FROM dead_letters")
    assert (letter["event_id"], letter["type"]) == (packaged["id"], types.PRODUCT_PACKAGED)
    assert letter["subscriber"] == fresh.layout.function_url("publish")
    assert letter["error"].startswith("HTTP 500")
    assert letter["attempts"] == RETRIES + 1
    # One first attempt plus the configured retries, each logged by publish with the event.
    failures = _failures_logged(s, packaged["id"], offset)
    assert len(failures) == RETRIES + 1
    assert "publication refused (test)" in failures[0]["message"]
    # ...in the file's trace: the router carried the event's traceparent to every attempt.
    trace_id = tracing.trace_id_of(packaged["extensions"]["traceparent"])
    assert {f["trace"]["id"] for f in failures} == {trace_id}
    assert failures[0]["auxip"]["product"] == name
    assert query(s, "SELECT status FROM products") == [{"status": "packaged"}]

    runner = CliRunner()
    listed = runner.invoke(cli(), ["deadletters", "list"])
    assert listed.exit_code == 0 and "1 dead letter(s)" in listed.output, listed.output
    shown = runner.invoke(cli(), ["products", "show", name])
    assert shown.exit_code == 0 and f"dead letter {letter['id']}" in shown.output, shown.output

    replayed = runner.invoke(cli(), ["deadletters", "replay", str(letter["id"])])
    assert replayed.exit_code == 0 and "1 of 1 replayed" in replayed.output, replayed.output
    event = security_events.one("auxip.operator.deadletters.replay")
    assert event["auxip.dead_letters"] == [letter["id"]] and event["event.outcome"] == "success"
    [product] = query(s, "SELECT status, online FROM products")
    assert product == {"status": "published", "online": True}  # publish answered once done
    assert query(s, "SELECT replayed_at FROM dead_letters")[0]["replayed_at"] is not None
    assert "0 dead letter(s)" in runner.invoke(cli(), ["deadletters", "list"]).output
    purged = runner.invoke(cli(), ["deadletters", "purge", "--replayed", "--yes"])
    assert "1 dead letter(s) deleted" in purged.output, purged.output
    purge = security_events.one("auxip.operator.deadletters.purge")
    assert purge["auxip.deleted"] == 1 and purge["event.type"] == ["deletion"]
    assert query(s, "SELECT 1 FROM dead_letters") == []


def test_a_stalled_product_is_pushed_on_a_bounded_number_of_times(fresh: StackInfo) -> None:
    """What the ingest sweep does each minute (AUXIP_STALLED_AFTER_S, 900 s): the event of
    a product's next step is sent again, with backoff, at most AUXIP_STALLED_RESENDS times."""
    s = fresh.settings
    rt = runtime.build(s.model_copy(update={"db_pool_max": 2}))
    execute(s, FIX)
    execute(s, REFUSE)
    try:
        name = _dead_lettered_safe(s, "B", datetime(2025, 8, 1, tzinfo=UTC))
        # Not stalled long enough yet: nothing is resent.
        assert resend_stalled(rt.pool, s.broker_url, after_s=3600, max_resends=1) == []
        [resent] = resend_stalled(rt.pool, s.broker_url, after_s=0, max_resends=1)
        assert resent["type"] == types.PRODUCT_PACKAGED and resent["data"]["name"] == name
        wait_until("the resent event, still refused, to be dead-lettered again",
                   lambda: len(query(s, "SELECT 1 FROM dead_letters")) == 2)
    finally:
        execute(s, FIX)
    # The first dead letter counts as replayed; the new failure is the one waiting.
    assert [r["replayed_at"] is None for r in query(
        s, "SELECT replayed_at FROM dead_letters ORDER BY id")] == [False, True]
    # Its one resend is spent: fixed or not, the product is the operators' now.
    assert resend_stalled(rt.pool, s.broker_url, after_s=0, max_resends=1) == []
    assert query(s, "SELECT status FROM products") == [{"status": "packaged"}]
    # With resends left (the default is 3), the next sweep after the fix publishes it.
    [again] = resend_stalled(rt.pool, s.broker_url, after_s=0, max_resends=3)
    assert again["id"] == resent["id"]
    wait_until("the product published", lambda: query(
        s, "SELECT status FROM products") == [{"status": "published"}])
    [row] = query(s, "SELECT send_attempts, sent_at FROM event_journal WHERE id = %s",
                  resent["id"])
    assert row["send_attempts"] == 3 and row["sent_at"] is not None
    assert all(r["replayed_at"] is not None
               for r in query(s, "SELECT replayed_at FROM dead_letters"))
    # Published: nothing is stalled any more.
    assert resend_stalled(rt.pool, s.broker_url, after_s=0, max_resends=9) == []
    assert query(s, "SELECT count(*) AS n FROM event_journal WHERE type = %s",
                 types.PRODUCT_PUBLISHED) == [{"n": 1}]
    rt.pool.close()
