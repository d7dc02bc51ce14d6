"""Replay from the journal through the real router and functions: the work lost after
ingestion comes back exactly, deleted catalogue rows come back whole (dates included), and
replaying again changes nothing (handlers idempotent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from devstack import demo_products
from devstack.stack.up import StackInfo
from events import types
from shared.adapters import storage
from shared.adapters.settings import Settings
from tests.adapters.telemetry.ecs_lines import SecurityStream
from tests.operations.conftest import cli, query, wait_until

STABLE = ("id, logical_name, name, status, product_type, platform_serial, fingerprint, layout,"
          " archive_key, distribution_key, content_type, content_length, content_start,"
          " content_end, origin_date, ingestion_date, eviction_date, online, attributes")


def _uploads() -> dict[str, bytes]:
    start = datetime(2025, 5, 1, tzinfo=UTC)
    files = dict(demo_products.orbit_eof(unit, "AUX_RESORB", start + timedelta(hours=i),
                                         start + timedelta(hours=i + 3),
                                         start + timedelta(hours=i + 4), max_vectors=4)
                 for i, unit in enumerate("AB"))
    folder, content = demo_products.aux_safe("A", "AUX_CAL", start, start - timedelta(days=3))
    files |= {f"{folder}/{path}": body for path, body in content.items()}
    zipped, content = demo_products.aux_safe("B", "AUX_INS", start, start - timedelta(days=3),
                                             seed=4)
    files[zipped + ".zip"] = demo_products.zip_folder(zipped, content)
    files["S1A_NOT_A_PRODUCT.EOF"] = b"<x/>"
    return files


def _catalogue(s: Settings) -> dict[str, object]:
    products = query(s, f"SELECT {STABLE}, checksums FROM products ORDER BY logical_name")
    for row in products:  # the checksum dates say when the bytes were last summed
        row["checksums"] = sorted((c["Algorithm"], c["Value"]) for c in row["checksums"])
    return {
        "products": products,
        "rejections": query(s, "SELECT name, reason, detail, quarantine_key FROM rejections"
                               " ORDER BY name"),
        "journal": query(s, "SELECT id, type, subject FROM event_journal ORDER BY id"),
        "archive": sorted(storage.list_keys(storage.client(s), s.archive_bucket)),
    }


def _published(s: Settings) -> int:
    return query(s, "SELECT count(*) AS n FROM products WHERE status = 'published'")[0]["n"]


def test_replaying_the_journal_restores_the_lost_work_without_duplicates(
        fresh: StackInfo, security_events: SecurityStream) -> None:
    s = fresh.settings
    client = storage.client(s)
    for key, body in _uploads().items():
        storage.put_bytes(client, s.inbox_bucket, key, body)
    wait_until("4 products published and 1 file rejected",
               lambda: _published(s) == 4 and len(query(s, "SELECT 1 FROM rejections")) == 1
               and len(query(s, "SELECT 1 FROM event_journal WHERE type = %s",
                             types.PRODUCT_PUBLISHED)) == 4,
               report=lambda: query(s, "SELECT logical_name, status FROM products"))
    before = _catalogue(s)

    # Lose everything written after ingestion: the packaging and publication events, the
    # packaged object, and the product row's state back to what ingest left. The orbit
    # files and the zipped SAFE were packaged and published by ingest itself, in its
    # transaction: their events and rows are ingestion's and stay. The SAFE folder went
    # through package and publish.
    with_lost = query(s, "DELETE FROM event_journal WHERE source LIKE '%%/package'"
                         " OR source LIKE '%%/publish' RETURNING type")
    assert sorted(r["type"] for r in with_lost) == [types.PRODUCT_PACKAGED,
                                                    types.PRODUCT_PUBLISHED]
    [folder] = query(s, "UPDATE products SET status = 'ingested', name = NULL,"
                        " distribution_key = NULL, content_type = 'application/octet-stream',"
                        " publication_date = NULL, eviction_date = NULL, online = false"
                        " WHERE layout = 'safe-folder' RETURNING logical_name")
    storage.delete(client, s.archive_bucket,
                   f"products/AUX_CAL/{folder['logical_name']}.zip")
    assert _published(s) == 3

    runner = CliRunner()
    listed = runner.invoke(cli(), ["replay", "--all", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert "would send" in listed.output and "nothing sent" in listed.output
    replayed = runner.invoke(cli(), ["replay", "--all"])  # to the broker (the router)
    assert replayed.exit_code == 0, replayed.output
    assert "accepted by" in replayed.output
    event = security_events.one("auxip.operator.replay")  # the dry run above made none
    assert (event["event.outcome"], event["auxip.failed"]) == ("success", 0)
    assert event["auxip.events"] == len(before["journal"]) - 2
    wait_until("the replay to publish the 4 products again",
               lambda: _published(s) == 4 and len(query(s, "SELECT 1 FROM event_journal")) ==
               len(before["journal"]),
               report=lambda: query(s, "SELECT logical_name, status FROM products"))
    after = _catalogue(s)
    assert after == before
    assert query(s, "SELECT 1 FROM dead_letters") == []

    # Again, each stage straight to its function (answers once done): nothing changes,
    # not even the publication dates.
    stamped = query(s, "SELECT id, publication_date, modification_date FROM products ORDER BY id")
    for event_type, function in ((types.FILE_ARRIVED, "ingest"),
                                 (types.PRODUCT_INGESTED, "package"),
                                 (types.PRODUCT_PACKAGED, "publish")):
        again = runner.invoke(cli(), ["replay", "--type", event_type, "--to", function])
        assert again.exit_code == 0, again.output
    assert _catalogue(s) == before
    assert query(s, "SELECT id, publication_date, modification_date FROM products"
                    " ORDER BY id") == stamped


def _rows(s: Settings) -> list[dict]:
    return query(s, "SELECT * FROM products ORDER BY logical_name")


def _published_all(s: Settings) -> None:
    wait_until("4 products published and 1 file rejected",
               lambda: _published(s) == 4 and len(query(s, "SELECT 1 FROM rejections")) == 1
               and len(query(s, "SELECT 1 FROM event_journal WHERE type = %s",
                             types.PRODUCT_PUBLISHED)) == 4,
               report=lambda: query(s, "SELECT logical_name, status FROM products"))
    # ... and every delivery made: a product.published still on its way to notify or route
    # would put back a row the test deletes (as it should, see the tests below).
    wait_until("the router to have delivered everything",
               lambda: not query(s, "SELECT 1 FROM router.deliveries WHERE status = 'pending'"))


def test_deleted_catalogue_rows_come_back_whole_from_a_replay(fresh: StackInfo) -> None:
    s = fresh.settings
    client = storage.client(s)
    for key, body in _uploads().items():
        storage.put_bytes(client, s.inbox_bucket, key, body)
    _published_all(s)
    rows = _rows(s)
    journal = query(s, "SELECT id, type, data FROM event_journal ORDER BY id")
    archive = sorted(storage.list_keys(client, s.archive_bucket))

    assert len(query(s, "DELETE FROM products RETURNING id")) == 4
    replayed = CliRunner().invoke(cli(), ["replay", "--all"])  # to the broker: any order
    assert replayed.exit_code == 0, replayed.output
    wait_until("the 4 products back",
               lambda: _published(s) == 4 and len(query(s, "SELECT 1 FROM products")) == 4,
               report=lambda: query(s, "SELECT logical_name, status FROM products"))
    # Every column, PublicationDate, ModificationDate and checksum dates included.
    assert _rows(s) == rows
    assert query(s, "SELECT id, type, data FROM event_journal ORDER BY id") == journal
    assert sorted(storage.list_keys(client, s.archive_bucket)) == archive
    assert query(s, "SELECT 1 FROM dead_letters") == []


def test_products_restore_and_a_new_arrival_put_deleted_rows_back(
        fresh: StackInfo, security_events: SecurityStream) -> None:
    s = fresh.settings
    client = storage.client(s)
    uploads = _uploads()
    for key, body in uploads.items():
        storage.put_bytes(client, s.inbox_bucket, key, body)
    _published_all(s)
    rows = _rows(s)
    assert len(query(s, "DELETE FROM products RETURNING id")) == 4

    # The same bytes arriving again: ingest finds the product in the journal, not anew.
    [orbit] = [k for k in uploads if k.startswith("S1A_OPER_AUX_RESORB")]
    storage.put_bytes(client, s.inbox_bucket, orbit, uploads[orbit])
    wait_until("the orbit file restored and the inbox empty",
               lambda: len(query(s, "SELECT 1 FROM products")) == 1
               and not list(storage.list_keys(client, s.inbox_bucket)),
               report=lambda: (query(s, "SELECT logical_name, status FROM products"),
                               list(storage.list_keys(client, s.inbox_bucket))))
    assert _rows(s) == [r for r in rows if r["logical_name"] == orbit]
    journal = query(s, "SELECT id, sent_at FROM event_journal ORDER BY id")

    runner = CliRunner()
    wide = {"COLUMNS": "250"}
    listed = runner.invoke(cli(), ["products", "restore", "--dry-run"], env=wide)
    assert listed.exit_code == 0, listed.output
    assert "3 product(s) missing; nothing restored" in listed.output
    assert len(query(s, "SELECT 1 FROM products")) == 1
    done = runner.invoke(cli(), ["products", "restore"], env=wide)
    assert done.exit_code == 0, done.output
    assert "3 of 3 missing product(s) restored" in done.output
    event = security_events.one("auxip.operator.products.restore")
    assert (event["auxip.missing"], event["auxip.restored"]) == (3, 3)
    assert _rows(s) == rows
    # Restoring sends nothing and journals nothing: subscribers already had their events.
    assert query(s, "SELECT id, sent_at FROM event_journal ORDER BY id") == journal
    again = runner.invoke(cli(), ["products", "restore"], env=wide)
    assert "0 of 0 missing product(s) restored" in again.output, again.output


def test_replay_selects_by_product_type_and_time(fresh: StackInfo) -> None:
    s = fresh.settings
    start = datetime(2025, 6, 1, tzinfo=UTC)
    name, body = demo_products.orbit_eof("A", "AUX_RESORB", start, start + timedelta(hours=3),
                                         start + timedelta(hours=4), max_vectors=4)
    storage.put_bytes(storage.client(s), s.inbox_bucket, name, body)
    wait_until("the product published", lambda: _published(s) == 1)
    runner = CliRunner()
    by_product = runner.invoke(cli(), ["replay", "--product", name, "--dry-run"])
    assert by_product.exit_code == 0 and "4 event(s)" in by_product.output, by_product.output
    by_type = runner.invoke(cli(), ["replay", "--type", types.PRODUCT_PUBLISHED,
                                    "--since", "1h", "--dry-run"])
    assert "1 event(s)" in by_type.output, by_type.output
    future = runner.invoke(cli(), ["replay", "--since", "2999-01-01", "--dry-run"])
    assert "0 event(s)" in future.output, future.output
    nothing = runner.invoke(cli(), ["replay"])
    assert nothing.exit_code == 2 and "nothing selected" in nothing.output

    wide = {"COLUMNS": "250"}
    journal = runner.invoke(cli(), ["events", "list", "--product", name], env=wide)
    assert journal.exit_code == 0 and "4 event(s)" in journal.output, journal.output
    [published] = query(s, "SELECT id, extensions FROM event_journal WHERE type = %s",
                        types.PRODUCT_PUBLISHED)
    trace_id = published["extensions"]["traceparent"].split("-")[1]
    assert trace_id in journal.output  # every event of the file shows the same trace
    assert journal.output.count(trace_id) == 4
    shown = runner.invoke(cli(), ["events", "show", published["id"]])
    assert shown.exit_code == 0 and name in shown.output
    assert "0 event(s)" in runner.invoke(cli(), ["events", "list", "--unsent"]).output
