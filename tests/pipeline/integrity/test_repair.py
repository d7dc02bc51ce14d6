"""Repairs after a scrub: a lost distribution zip packaged again from the ingested copy
(and never from a damaged one), a polled product fetched again from its source and
restored by ingest, a product nothing can restore taken offline."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import psycopg
from pydantic import TypeAdapter

from devstack import demo_products
from events import types
from events.files import FileArrived
from shared.adapters import storage
from shared.adapters.catalogue import sources as sources_table
from shared.adapters.runtime import Runtime
from shared.pipeline.ingestion.ingest import Outcome, ingest
from shared.pipeline.integrity import repair, scrub
from shared.pipeline.routing import config, polling
from tests.pipeline.ingestion.conftest import Inbox, rows
from tests.pipeline.integrity.conftest import START, ingest_files, orbit, product, publish_all


def _safe(rt: Runtime, inbox: Inbox) -> dict:
    folder, content = demo_products.aux_safe("B", "AUX_INS", START, START - timedelta(days=1))
    ingest_files(rt, inbox, {f"{folder}/{p}": b for p, b in content.items()})
    publish_all(rt)
    return product(rt, folder)


def _md5(rt: Runtime, key: str) -> str:
    return hashlib.md5(storage.get_bytes(rt.s3, rt.settings.archive_bucket, key)).hexdigest()


def _catalogued_md5(row: dict) -> str:
    return next(c["Value"] for c in row["checksums"] if c["Algorithm"] == "MD5")


def test_a_lost_zip_is_packaged_again_from_the_ingested_copy(rt: Runtime, inbox: Inbox) -> None:
    row = _safe(rt, inbox)
    storage.delete(rt.s3, rt.settings.archive_bucket, row["distribution_key"])
    report = scrub.scrub(rt, sample=0, grace_s=0)
    [done] = repair.repair(rt, report, {})
    assert (done.product_id, done.action, done.offline) == (row["id"], repair.REPACKAGED, False)
    assert _md5(rt, row["distribution_key"]) == _catalogued_md5(row)
    assert scrub.scrub(rt, full=True, grace_s=0).findings == []


def test_a_damaged_ingested_copy_is_never_packaged_from(rt: Runtime, inbox: Inbox) -> None:
    row = _safe(rt, inbox)
    bucket = rt.settings.archive_bucket
    storage.delete(rt.s3, bucket, row["distribution_key"])
    manifest = f"{row['archive_key']}manifest.safe"
    storage.put_bytes(rt.s3, bucket, manifest,
                      storage.get_bytes(rt.s3, bucket, manifest).replace(b"<", b" <", 1))
    report = scrub.scrub(rt, sample=0, grace_s=0)
    [done] = repair.repair(rt, report, {}, mark_offline=True)
    assert done.action == repair.UPLOAD_AGAIN and "upload" in done.detail
    assert done.offline
    assert storage.head(rt.s3, bucket, row["distribution_key"]) is None  # nothing made up
    assert product(rt, row["logical_name"])["online"] is False


def test_marking_offline_alone_brings_nothing_back(rt: Runtime, inbox: Inbox) -> None:
    name, body = orbit(0)
    ingest_files(rt, inbox, {name: body})
    publish_all(rt)
    row = product(rt, name)
    storage.delete(rt.s3, rt.settings.archive_bucket, row["archive_key"])
    report = scrub.scrub(rt, sample=0, grace_s=0)
    [done] = repair.repair(rt, report, {}, bring_back=False, mark_offline=True)
    assert (done.action, done.offline) == (repair.LEFT, True)
    assert inbox.keys() == []
    assert product(rt, name)["online"] is False


def _source(rt: Runtime, root: Path) -> None:
    source = TypeAdapter(config.Source).validate_python(
        {"name": "drop", "kind": "directory", "path": str(root), "settle_s": 0})
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        sources_table.upsert(conn, config.source_row(source))


def _arrivals(rt: Runtime, after: int = 0) -> list[tuple[int, FileArrived]]:
    return [(n, FileArrived.model_validate(r["data"])) for n, r in enumerate(rows(
        rt, "SELECT data FROM event_journal WHERE type = %s ORDER BY recorded_at",
        types.FILE_ARRIVED)) if n >= after]


def test_a_polled_product_is_fetched_again_and_restored(rt: Runtime, inbox: Inbox,
                                                        tmp_path: Path) -> None:
    name, body = orbit(1)
    folder, content = demo_products.aux_safe("A", "AUX_PP1", START, START - timedelta(days=1))
    (tmp_path / name).write_bytes(body)
    for path, data in content.items():
        (tmp_path / folder / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / path).write_bytes(data)
    _source(rt, tmp_path)
    assert polling.poll(rt, "drop", {}, force=True).fetched == 1 + len(content)
    for n, arrived in _arrivals(rt):
        ingest(rt, arrived, f"poll-{n}")
    publish_all(rt)
    orbit_row, safe_row = product(rt, name), product(rt, folder)
    bucket = rt.settings.archive_bucket
    storage.delete(rt.s3, bucket, orbit_row["archive_key"])
    storage.delete_prefix(rt.s3, bucket, safe_row["archive_key"])
    storage.delete(rt.s3, bucket, safe_row["distribution_key"])
    before = len(_arrivals(rt))

    report = scrub.scrub(rt, sample=0, grace_s=0)
    assert report.damaged_products().keys() == {orbit_row["id"], safe_row["id"]}
    done = {d.product_id: d for d in repair.repair(rt, report, {})}
    assert {d.action for d in done.values()} == {repair.REFETCHED}
    assert "drop" in done[orbit_row["id"]].detail
    again = _arrivals(rt, after=before)
    assert len(again) == 1 + len(content)
    assert {a.origin for _, a in again} == {"poll:drop"}

    outcomes = [ingest(rt, arrived, f"refetched-{n}").outcome for n, arrived in again]
    assert outcomes.count(Outcome.RESTORED) == 2
    assert _md5(rt, orbit_row["archive_key"]) == _catalogued_md5(orbit_row)
    assert _md5(rt, safe_row["distribution_key"]) == _catalogued_md5(safe_row)
    assert scrub.scrub(rt, full=True, grace_s=0).findings == []
    assert len(rows(rt, "SELECT id FROM products")) == 2
    assert len(rows(rt, "SELECT id FROM event_journal WHERE type = %s",
                    types.PRODUCT_INGESTED)) == 2
    assert inbox.keys() == []

    # A source that no longer has the file: the operator is told to upload it again.
    (tmp_path / name).unlink()
    storage.delete(rt.s3, bucket, orbit_row["archive_key"])
    [gone] = repair.repair(rt, scrub.scrub(rt, sample=0, grace_s=0), {})
    assert gone.action == repair.UPLOAD_AGAIN and "drop" in gone.detail
