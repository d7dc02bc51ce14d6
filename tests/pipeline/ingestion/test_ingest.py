"""The ingest step on real Sentinel-1 samples and on hostile files."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import psycopg

from devstack import demo_products
from events import types
from events.files import FileArrived
from shared.adapters.runtime import Runtime
from shared.pipeline import publication
from shared.pipeline.ingestion.ingest import Outcome, ingest, sweep_folders
from shared.pipeline.ingestion.reconcile import reconcile_inbox
from tests.core import hostile
from tests.pipeline.ingestion.conftest import REAL, Inbox, real_folder, rows

RESORB = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"
CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
PP2 = "S1A_AUX_PP2_V20171017T080000_G20171013T101254.SAFE"
REP = "S1A_OPER_REP__SUP___20181208T070000_20181208T111500_0001.EOF"


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _rejection(rt: Runtime) -> dict:
    [row] = rows(rt, "SELECT * FROM rejections")
    return row


def test_real_orbit_file_is_ingested_archived_packaged_and_announced(rt: Runtime,
                                                                      inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    result = ingest(rt, inbox.put(RESORB, body), "ev-1")
    assert result.outcome is Outcome.INGESTED, result.detail
    [product] = rows(rt, "SELECT * FROM products")
    assert (product["logical_name"], product["product_type"], product["platform_serial"]) == (
        RESORB, "AUX_RESORB", "A")
    assert product["content_start"] == _utc(2017, 12, 13, 10, 27, 37)
    assert product["content_end"] == _utc(2017, 12, 13, 13, 45, 7)
    assert product["fingerprint"] == hashlib.md5(body).hexdigest()
    assert product["attributes"]["processingDate"].startswith("2017-12-13T14:38:38")
    # An EOF is served as it arrived: packaged and published in ingest's own transaction.
    assert (product["status"], product["name"], product["online"]) == ("published", RESORB, True)
    assert product["publication_date"] == product["ingestion_date"] == product["modification_date"]
    assert product["eviction_date"] == publication.KEPT  # no retention configured
    assert product["distribution_key"] == product["archive_key"]
    archived = rt.s3.get_object(Bucket=rt.settings.archive_bucket, Key=product["archive_key"])
    assert archived["Body"].read() == body
    assert inbox.keys() == []
    journal = {row["type"]: row for row in rows(rt, "SELECT * FROM event_journal")}
    assert sorted(journal) == sorted([types.PRODUCT_INGESTED, types.PRODUCT_PACKAGED,
                                      types.PRODUCT_PUBLISHED])
    ingested, packaged, published = (journal[t] for t in (
        types.PRODUCT_INGESTED, types.PRODUCT_PACKAGED, types.PRODUCT_PUBLISHED))
    assert {e["data"]["product_id"] for e in journal.values()} == {str(product["id"])}
    # Said on the events, so the package and publish Triggers leave them out
    # (knative/functions.yaml).
    assert ingested["extensions"]["auxippackaged"] == "true"
    assert packaged["extensions"]["auxippublished"] == "true"
    assert "auxippackaged" not in packaged["extensions"]
    assert "auxippublished" not in published["extensions"]
    assert {e["source"].rsplit("/", 1)[-1] for e in journal.values()} == {"ingest"}
    assert published["data"]["name"] == RESORB
    assert published["data"]["content_length"] == len(body)
    assert set(result.event_ids) == {ingested["id"], packaged["id"], published["id"]}


def test_a_product_published_after_a_later_date_was_given_gets_a_date_after_it(
        rt: Runtime, inbox: Inbox) -> None:
    """The publication clock stands ahead of this process's clock (a publication with a
    later date committed first): the product's PublicationDate comes after it, and its row
    and its events say the same date."""
    ahead = datetime.now(UTC) + timedelta(hours=1)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO publication_clock (last) VALUES (%s)"
                     " ON CONFLICT (id) DO UPDATE SET last = excluded.last", (ahead,))
    result = ingest(rt, inbox.put(RESORB, (REAL / RESORB).read_bytes()), "ev-1")
    assert result.outcome is Outcome.INGESTED, result.detail
    [product] = rows(rt, "SELECT * FROM products")
    assert product["publication_date"] == ahead + timedelta(microseconds=1)
    assert product["ingestion_date"] == product["publication_date"]
    journal = {row["type"]: row for row in rows(rt, "SELECT * FROM event_journal")}
    published = journal[types.PRODUCT_PUBLISHED]["data"]
    assert datetime.fromisoformat(published["publication_date"]) == product["publication_date"]


def test_same_file_twice_is_one_product(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    assert ingest(rt, inbox.put(RESORB, body), "ev-1").outcome is Outcome.INGESTED
    assert ingest(rt, inbox.put(RESORB, body), "ev-2").outcome is Outcome.DUPLICATE
    assert len(rows(rt, "SELECT id FROM products")) == 1
    assert rows(rt, "SELECT id FROM rejections") == []
    assert inbox.keys() == []


def test_redelivered_event_after_success_is_a_no_op(rt: Runtime, inbox: Inbox) -> None:
    arrived = inbox.put(RESORB, (REAL / RESORB).read_bytes())
    assert ingest(rt, arrived, "ev-1").outcome is Outcome.INGESTED
    assert ingest(rt, arrived, "ev-1").outcome is Outcome.GONE
    assert len(rows(rt, "SELECT id FROM products")) == 1


def test_same_name_other_bytes_is_a_conflict_and_the_product_stays(rt: Runtime,
                                                                   inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    ingest(rt, inbox.put(RESORB, body), "ev-1")
    [before] = rows(rt, "SELECT * FROM products")
    altered = body.replace(b"<Quality>NOMINAL</Quality>", b"<Quality>DEGRADED</Quality>", 1)
    result = ingest(rt, inbox.put(RESORB, altered), "ev-2")
    assert result.outcome is Outcome.REJECTED
    assert _rejection(rt)["reason"] == "conflict"
    assert rows(rt, "SELECT * FROM products") == [before]
    quarantined = rt.s3.get_object(Bucket=rt.settings.quarantine_bucket,
                                   Key=_rejection(rt)["quarantine_key"])
    assert quarantined["Body"].read() == altered
    assert inbox.keys() == []


def test_an_evicted_product_sent_again_is_kept_in_quarantine(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    assert ingest(rt, inbox.put(RESORB, body), "ev-1").outcome is Outcome.INGESTED
    with rt.pool.connection() as conn:
        conn.execute("UPDATE products SET status = 'evicted', online = false")
    [before] = rows(rt, "SELECT * FROM products")
    result = ingest(rt, inbox.put(RESORB, body), "ev-2")
    assert result.outcome is Outcome.REJECTED
    rejection = _rejection(rt)
    assert rejection["reason"] == "conflict" and "evicted" in rejection["detail"]
    assert rows(rt, "SELECT * FROM products") == [before]  # not published again
    quarantined = rt.s3.get_object(Bucket=rt.settings.quarantine_bucket,
                                   Key=rejection["quarantine_key"])
    assert quarantined["Body"].read() == body  # and not lost
    assert inbox.keys() == []


def test_safe_folder_in_any_order_is_ingested_once(rt: Runtime, inbox: Inbox) -> None:
    files = real_folder(CAL)
    arrivals = inbox.put_folder(CAL, files)
    random.Random(7).shuffle(arrivals)
    outcomes = [ingest(rt, arrived, f"ev-{i}").outcome for i, arrived in enumerate(arrivals)]
    assert outcomes.count(Outcome.INGESTED) == 1
    assert set(outcomes) <= {Outcome.INGESTED, Outcome.GONE, Outcome.PENDING}
    [product] = rows(rt, "SELECT * FROM products")
    assert product["layout"] == "safe-folder"
    assert product["fingerprint"] == hashlib.md5(files["manifest.safe"]).hexdigest()
    assert product["content_start"] == _utc(2017, 10, 17, 8)
    assert product["attributes"]["instrumentConfigurationId"] == 6
    archived = inbox.keys(rt.settings.archive_bucket)
    assert sorted(archived) == sorted(f"ingested/AUX_CAL/{CAL}/{p}" for p in files)
    assert inbox.keys() == []
    assert rows(rt, "SELECT * FROM pending_folders") == []


def test_safe_folder_waits_for_its_data_whatever_arrives_first(rt: Runtime,
                                                               inbox: Inbox) -> None:
    files = real_folder(CAL)
    manifest = inbox.put(f"{CAL}/manifest.safe", files["manifest.safe"])
    assert ingest(rt, manifest, "ev-1").outcome is Outcome.PENDING
    [pending] = rows(rt, "SELECT * FROM pending_folders")
    assert pending["missing"] == ["data/s1a-aux-cal.xml", "support/s1-aux-cal.xsd",
                                  "support/s1-object-types.xsd"]
    data = inbox.put(f"{CAL}/data/s1a-aux-cal.xml", files["data/s1a-aux-cal.xml"])
    # The schemas the manifest references are part of the product: still waiting.
    assert ingest(rt, data, "ev-2").outcome is Outcome.PENDING
    rest = [inbox.put(f"{CAL}/{p}", b) for p, b in files.items() if p.startswith("support/")]
    assert ingest(rt, rest[-1], "ev-3").outcome is Outcome.INGESTED
    [product] = rows(rt, "SELECT archive_key FROM products")
    assert len(inbox.keys(rt.settings.archive_bucket)) == len(files)


def test_zipped_safe_and_then_its_folder_are_the_same_product(rt: Runtime,
                                                              inbox: Inbox) -> None:
    files = real_folder(CAL)
    zipped = demo_products.zip_folder(CAL, files)
    assert ingest(rt, inbox.put(CAL + ".zip", zipped), "ev-1").outcome is Outcome.INGESTED
    [product] = rows(rt, "SELECT * FROM products")
    assert product["layout"] == "safe-archive"
    outcomes = [ingest(rt, a, f"ev-f{i}").outcome
                for i, a in enumerate(inbox.put_folder(CAL, files))]
    assert Outcome.DUPLICATE in outcomes
    assert len(rows(rt, "SELECT id FROM products")) == 1
    assert inbox.keys() == []


def test_manifest_only_safe_ends_in_quarantine_as_incomplete(rt: Runtime, inbox: Inbox) -> None:
    [arrived] = inbox.put_folder(PP2, real_folder(PP2))
    assert ingest(rt, arrived, "ev-1").outcome is Outcome.PENDING
    assert sweep_folders(rt, grace_s=3600, event_id="ping-1") == []
    [result] = sweep_folders(rt, grace_s=0, event_id="ping-2")
    assert result.outcome is Outcome.REJECTED
    rejection = _rejection(rt)
    assert rejection["reason"] == "safe_incomplete"
    assert "data/s1a-aux-pp2.xml" in rejection["detail"]
    assert inbox.keys(rt.settings.quarantine_bucket) == [
        f"{rejection['quarantine_key']}manifest.safe"]
    assert inbox.keys() == [] and rows(rt, "SELECT * FROM pending_folders") == []


def test_zipped_safe_without_its_data_is_incomplete(rt: Runtime, inbox: Inbox) -> None:
    zipped = demo_products.zip_folder(PP2, real_folder(PP2))
    assert ingest(rt, inbox.put(PP2 + ".zip", zipped), "ev-1").outcome is Outcome.REJECTED
    assert _rejection(rt)["reason"] == "safe_incomplete"


def test_unknown_type_is_refused_until_configured(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / REP).read_bytes()
    assert ingest(rt, inbox.put(REP, body), "ev-1").outcome is Outcome.REJECTED
    assert _rejection(rt)["reason"] == "type_unknown"
    extended = Runtime(rt.settings.model_copy(update={"extra_product_types": "REP__SUP__=mpl"}),
                       rt.pool, rt.s3)
    assert ingest(extended, inbox.put(REP, body), "ev-2").outcome is Outcome.INGESTED
    [product] = rows(rt, "SELECT * FROM products")
    assert product["product_type"] == "REP__SUP__"
    assert product["content_start"] == _utc(2018, 12, 8, 7)


def test_folder_data_that_does_not_match_its_manifest_is_refused(rt: Runtime,
                                                                 inbox: Inbox) -> None:
    files = real_folder(CAL)
    data = files["data/s1a-aux-cal.xml"]
    files["data/s1a-aux-cal.xml"] = data[:-10] + b"0123456789"  # same size, other bytes
    outcomes = [ingest(rt, a, f"ev-{i}").outcome for i, a in enumerate(inbox.put_folder(CAL, files))]
    assert Outcome.REJECTED in outcomes
    assert _rejection(rt)["reason"] == "checksum_mismatch"
    assert rows(rt, "SELECT id FROM products") == []
    assert inbox.keys() == []
    assert len(inbox.keys(rt.settings.quarantine_bucket)) == len(files)


def _eof(unit: str = "A", product_type: str = "AUX_RESORB", **kw: object) -> tuple[str, bytes]:
    start = _utc(2024, 1, 1, 0, 0, 0)
    return demo_products.orbit_eof(unit, product_type, start, _utc(2024, 1, 1, 3, 20),
                                   _utc(2024, 1, 1, 3, 30), max_vectors=5, **kw)


def _hostile_cases(tmp_path) -> list[tuple[str, bytes, str]]:  # type: ignore[no-untyped-def]
    name, _ = _eof()
    _, lying_header = _eof(file_type="AUX_POEORB")
    safe = CAL + ".zip"
    return [
        (name, hostile.eicar_bytes(), "virus_found"),
        (name, b"", "empty"),
        (name, b"this is not xml at all", "metadata_invalid"),
        (name, lying_header, "content_mismatch"),
        (name, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Earth_Explorer_File>&b;</Earth_Explorer_File>', "metadata_invalid"),
        (safe, hostile.zip_slip(tmp_path / "slip.zip", f"{CAL}/../../etc/x").read_bytes(), "archive_unsafe"),
        (safe, hostile.zip_bomb(tmp_path / "bomb.zip", mib=60).read_bytes(), "archive_unsafe"),
        (safe, hostile.zip_symlink(tmp_path / "link.zip").read_bytes(), "archive_unsafe"),
        (safe, hostile.truncated_zip(tmp_path / "trunc.zip").read_bytes(), "archive_corrupt"),
        (safe, (REAL / RESORB).read_bytes(), "archive_corrupt"),
        ("S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.tgz",
         hostile.tar_slip(tmp_path / "slip.tgz").read_bytes(), "archive_unsafe"),
        ("S1Z_OPER_AUX_RESORB_whatever.EOF", b"<x/>", "name_invalid"),
        ("../../etc/passwd", b"root:x:0:0", "name_invalid"),
        ("S1A_" + "é" * 40 + ".EOF", b"<x/>", "name_invalid"),
        ("x" * 300, b"<x/>", "name_invalid"),
    ]


def test_hostile_files_end_in_quarantine_with_their_reason(rt: Runtime, inbox: Inbox,
                                                           tmp_path) -> None:  # type: ignore[no-untyped-def]
    for index, (key, body, reason) in enumerate(_hostile_cases(tmp_path)):
        if body:
            arrived = inbox.put(key, body)
        else:
            arrived = inbox.put(key, body)
        result = ingest(rt, arrived, f"ev-{index}")
        assert result.outcome is Outcome.REJECTED, (key, reason, result)
        [row] = rows(rt, "SELECT * FROM rejections WHERE event_id = %s", f"ev-{index}")
        assert row["reason"] == reason, (key, row["detail"])
        assert row["detail"]
        kept = rt.s3.get_object(Bucket=rt.settings.quarantine_bucket, Key=row["quarantine_key"])
        assert kept["Body"].read() == body
        assert inbox.keys() == []
    assert rows(rt, "SELECT id FROM products") == []
    # The pipeline still works after all that.
    assert ingest(rt, inbox.put(RESORB, (REAL / RESORB).read_bytes()), "ev-ok").outcome \
        is Outcome.INGESTED


def test_rejection_is_journalled_with_its_reason(rt: Runtime, inbox: Inbox) -> None:
    name, _ = _eof()
    ingest(rt, inbox.put(name, hostile.eicar_bytes()), "ev-1")
    [event] = rows(rt, "SELECT * FROM event_journal")
    assert event["type"] == types.FILE_REJECTED
    assert event["data"]["reason"] == "virus_found"
    assert "Eicar" in event["data"]["detail"]


def test_every_real_sample_gets_the_expected_outcome(rt: Runtime, inbox: Inbox) -> None:
    expected_published = {
        RESORB: ("AUX_RESORB", "A"),
        "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF": ("MPL_ORBPRE", "A"),
        "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0020.EOF": ("MPL_ORBSCT", "A"),
        "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0024.EOF": ("MPL_ORBSCT", "A"),
        "S1B_OPER_MPL_ORBSCT_20160425T224606_99999999T999999_0017.EOF": ("MPL_ORBSCT", "B"),
        CAL: ("AUX_CAL", "A"),
        "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE": ("AUX_INS", "A"),
        "S1A_AUX_PP1_V20171017T080000_G20171013T101236.SAFE": ("AUX_PP1", "A"),
    }
    for index, path in enumerate(sorted(REAL.iterdir())):
        if path.name in ("SOURCES.md", "trimmed_from_real"):
            continue
        if path.is_dir():
            for i, arrived in enumerate(inbox.put_folder(path.name, real_folder(path.name))):
                ingest(rt, arrived, f"ev-{index}-{i}")
        else:
            ingest(rt, inbox.put(path.name, path.read_bytes()), f"ev-{index}")
    sweep_folders(rt, grace_s=0, event_id="ping")
    got = {r["logical_name"]: (r["product_type"], r["platform_serial"])
           for r in rows(rt, "SELECT * FROM products")}
    assert got == expected_published
    reasons = {r["name"]: r["reason"] for r in rows(rt, "SELECT * FROM rejections")}
    assert reasons[REP] == "type_unknown"
    assert reasons["S1A_OPER_AUX_OBMEMC_PDMC_20140201T000000.xml"] == "type_unknown"
    for incomplete in ("S1A_AUX_PP2_V20171017T080000_G20171013T101254.SAFE",
                       "S1__AUX_ICE_V20160501T120000_G20160502T043607.SAFE",
                       "S1__AUX_TEC_V20190805T000000_20190805T235959_G20200210T102615.SAFE",
                       "S1__AUX_TRO_V20190805T180000_20190805T235959_G20200518T084534.SAFE",
                       "S1__AUX_WAV_V20110801T000000_G20111026T141850.SAFE",
                       "S1__AUX_WND_V20160423T120000_G20160422T060059.SAFE"):
        assert reasons[incomplete] == "safe_incomplete", incomplete
    assert inbox.keys() == []


def test_objects_whose_notification_was_lost_are_announced_once(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    inbox.put(RESORB, body)  # no ingest call: as if the notification never came
    waiting = real_folder(PP2)
    ingest(rt, inbox.put_folder(PP2, waiting)[0], "ev-pp2")  # a folder the sweep owns
    assert reconcile_inbox(rt, min_age_s=3600) == []  # too recent: its event may be on its way
    assert reconcile_inbox(rt, min_age_s=0) == [RESORB]
    assert reconcile_inbox(rt, min_age_s=0) == []  # announced once per object version
    [event] = rows(rt, "SELECT * FROM event_journal WHERE type = %s", types.FILE_ARRIVED)
    assert event["data"]["key"] == RESORB and event["data"]["size"] == len(body)
    arrived = FileArrived.model_validate(event["data"])
    assert ingest(rt, arrived, event["id"]).outcome is Outcome.INGESTED


def test_a_row_the_catalogue_lost_comes_back_from_the_journal_when_the_file_does(
        rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    assert ingest(rt, inbox.put(RESORB, body), "ev-1").outcome is Outcome.INGESTED
    [before] = rows(rt, "SELECT * FROM products")
    journal = rows(rt, "SELECT id FROM event_journal ORDER BY id")
    rows(rt, "DELETE FROM products RETURNING id")
    again = ingest(rt, inbox.put(RESORB, body), "ev-2")
    assert again.outcome is Outcome.DUPLICATE and "restored from the journal" in again.detail
    [after] = rows(rt, "SELECT * FROM products")
    assert after == before  # packaged by ingest, as the journal says
    assert rows(rt, "SELECT id FROM event_journal ORDER BY id") == journal
    assert inbox.keys() == []
