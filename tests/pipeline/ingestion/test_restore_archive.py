"""The same file arriving again for a catalogued product whose archive objects are gone (or
hold other bytes) puts them back, as catalogued, instead of being dropped as a duplicate;
never a second product, never another product.ingested."""

from __future__ import annotations

import hashlib

from events import types
from events.products import ProductIngested, ProductPackaged
from shared.adapters import storage
from shared.adapters.catalogue import integrity
from shared.adapters.runtime import Runtime
from shared.pipeline import packaging, publication
from shared.pipeline.ingestion.ingest import Outcome, ingest
from tests.pipeline.ingestion.conftest import REAL, Inbox, real_folder, rows

RESORB = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"
CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"


def _published(rt: Runtime) -> dict:
    """Package and publish (unless ingest did) the one ingested product, as the next steps
    would."""
    [ingested] = rows(rt, "SELECT data, extensions FROM event_journal WHERE type = %s",
                      types.PRODUCT_INGESTED)
    if ingested["extensions"].get("auxippackaged") != "true":
        assert packaging.package(rt, ProductIngested.model_validate(ingested["data"]))
    [packaged] = rows(rt, "SELECT data, extensions FROM event_journal WHERE type = %s",
                      types.PRODUCT_PACKAGED)
    if packaged["extensions"].get("auxippublished") != "true":
        assert publication.publish(rt, ProductPackaged.model_validate(packaged["data"]))
    [product] = rows(rt, "SELECT * FROM products")
    assert product["status"] == "published" and product["online"]
    return product


def _md5(rt: Runtime, key: str) -> str:
    return hashlib.md5(storage.get_bytes(rt.s3, rt.settings.archive_bucket, key)).hexdigest()


def _catalogued_md5(product: dict) -> str:
    return next(c["Value"] for c in product["checksums"] if c["Algorithm"] == "MD5")


def _journal(rt: Runtime) -> list[str]:
    return [r["id"] for r in rows(rt, "SELECT id FROM event_journal ORDER BY id")]


def test_a_lost_orbit_file_comes_back_with_the_same_file(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    assert ingest(rt, inbox.put(RESORB, body), "ev-1").outcome is Outcome.INGESTED
    product = _published(rt)
    assert product["distribution_key"] == product["archive_key"]  # served as it arrived
    journal = _journal(rt)
    storage.delete(rt.s3, rt.settings.archive_bucket, product["archive_key"])
    with rt.pool.connection() as conn:  # what `auxip products verify --mark-offline` did
        assert integrity.mark_offline(conn, product["id"])

    again = ingest(rt, inbox.put(RESORB, body), "ev-2")
    assert again.outcome is Outcome.RESTORED, again.detail
    assert _md5(rt, product["archive_key"]) == _catalogued_md5(product)
    [after] = rows(rt, "SELECT * FROM products")
    assert (after["id"], after["status"], after["online"]) == (product["id"], "published", True)
    assert _journal(rt) == journal  # no event: subscribers had theirs
    assert inbox.keys() == [] and rows(rt, "SELECT id FROM rejections") == []
    # Once whole again, the same file is an ordinary duplicate.
    assert ingest(rt, inbox.put(RESORB, body), "ev-3").outcome is Outcome.DUPLICATE


def test_other_bytes_under_the_products_key_are_replaced(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    assert ingest(rt, inbox.put(RESORB, body), "ev-1").outcome is Outcome.INGESTED
    product = _published(rt)
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0xFF  # same size: only the checksum tells
    storage.put_bytes(rt.s3, rt.settings.archive_bucket, product["archive_key"], bytes(changed))

    assert ingest(rt, inbox.put(RESORB, body), "ev-2").outcome is Outcome.RESTORED
    assert _md5(rt, product["archive_key"]) == _catalogued_md5(product)


def test_a_safe_products_copy_and_zip_come_back(rt: Runtime, inbox: Inbox) -> None:
    files = real_folder(CAL)
    arrivals = inbox.put_folder(CAL, files)
    outcomes = [ingest(rt, a, f"ev-{i}").outcome for i, a in enumerate(arrivals)]
    assert Outcome.INGESTED in outcomes
    product = _published(rt)
    assert product["archive_key"].endswith(f"{CAL}/")
    bucket = rt.settings.archive_bucket
    copy = sorted(storage.list_keys(rt.s3, bucket, product["archive_key"]))
    zipped = _md5(rt, product["distribution_key"])
    storage.delete_prefix(rt.s3, bucket, product["archive_key"])
    storage.delete(rt.s3, bucket, product["distribution_key"])

    again = [ingest(rt, a, f"again-{i}") for i, a in enumerate(inbox.put_folder(CAL, files))]
    assert Outcome.RESTORED in [r.outcome for r in again], [r.detail for r in again]
    assert sorted(storage.list_keys(rt.s3, bucket, product["archive_key"])) == copy
    # Packaged again from the restored copy: the very bytes catalogued (deterministic zip).
    assert _md5(rt, product["distribution_key"]) == zipped == _catalogued_md5(product)
    assert len(rows(rt, "SELECT id FROM products")) == 1
    assert inbox.keys() == []


def test_a_lost_copy_that_arrives_in_another_container_is_kept_in_quarantine(
        rt: Runtime, inbox: Inbox) -> None:
    files = real_folder(CAL)
    for i, arrived in enumerate(inbox.put_folder(CAL, files)):
        ingest(rt, arrived, f"ev-{i}")
    product = _published(rt)
    bucket = rt.settings.archive_bucket
    storage.delete_prefix(rt.s3, bucket, product["archive_key"])
    zipped = storage.get_bytes(rt.s3, bucket, product["distribution_key"])

    result = ingest(rt, inbox.put(CAL + ".zip", zipped), "ev-zip")
    assert result.outcome is Outcome.REJECTED
    [rejection] = rows(rt, "SELECT * FROM rejections")
    assert rejection["reason"] == "conflict" and "upload it as it was" in rejection["detail"]
    assert storage.get_bytes(rt.s3, rt.settings.quarantine_bucket,
                             rejection["quarantine_key"]) == zipped
