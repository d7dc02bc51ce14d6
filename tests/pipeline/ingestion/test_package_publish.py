"""Packaging into the distribution form, and publication with retention."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from devstack import demo_products
from events.products import ProductIngested, ProductPackaged
from shared.adapters.catalogue import products
from shared.adapters.runtime import Runtime
from shared.pipeline import packaging, publication
from shared.pipeline.ingestion.ingest import Outcome, ingest
from tests.pipeline.ingestion.conftest import REAL, Inbox, real_folder, rows

CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
RESORB = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"


def _ingested(rt: Runtime) -> ProductIngested:
    [event] = rows(rt, "SELECT data FROM event_journal WHERE type = 'org.auxip.product.ingested.v1'")
    return ProductIngested.model_validate(event["data"])


def _packaged(rt: Runtime) -> ProductPackaged:
    [event] = rows(rt, "SELECT data FROM event_journal WHERE type = 'org.auxip.product.packaged.v1'")
    return ProductPackaged.model_validate(event["data"])


def _object(rt: Runtime, key: str) -> bytes:
    return rt.s3.get_object(Bucket=rt.settings.archive_bucket, Key=key)["Body"].read()


def _held_up_to(rt: Runtime, limit: int) -> Runtime:
    """`rt` whose ingest packages a product of one object up to `limit` bytes itself."""
    return Runtime(rt.settings.model_copy(update={"package_in_ingest_bytes": limit}),
                   rt.pool, rt.s3)


def _cal_zip(compression: int = zipfile.ZIP_STORED) -> bytes:
    """Another tool's zip of CAL: reversed order, directory entries, other timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr(zipfile.ZipInfo(f"{CAL}/", (2020, 5, 5, 5, 5, 4)), b"")
        for path, body in sorted(real_folder(CAL).items(), reverse=True):
            archive.writestr(zipfile.ZipInfo(f"{CAL}/{path}", (2021, 1, 1, 0, 0, 0)), body,
                             compress_type=compression)
    return buffer.getvalue()


def _package_cal(rt: Runtime, inbox: Inbox, arrives: str) -> bytes:
    """CAL arrived as a folder (packaged by package), or zipped: packaged by ingest itself
    ("zip"), or by package when the zip ("large zip") or what it holds ("large content")
    is above ingest's limit."""
    files = real_folder(CAL)
    if arrives == "folder":
        outcomes = [ingest(rt, a, f"ev{i}").outcome for i, a in enumerate(inbox.put_folder(CAL, files))]
        assert Outcome.INGESTED in outcomes
    else:
        deflated = arrives == "large content"
        body = _cal_zip(zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED)
        if deflated:  # the zip within the limit, its content above it
            assert sum(map(len, files.values())) > len(body)
        ingesting = _held_up_to(rt, len(body) - (arrives == "large zip"))
        assert ingest(ingesting, inbox.put(CAL + ".zip", body), "ev").outcome is Outcome.INGESTED
    [event] = rows(rt, "SELECT extensions FROM event_journal"
                   " WHERE type = 'org.auxip.product.ingested.v1'")
    by_ingest = arrives == "zip"
    assert (event["extensions"].get("auxippackaged") == "true") is by_ingest
    # Packaged by ingest, a product.ingested delivered to package anyway (a replay) finds
    # nothing to do; otherwise package builds the object.
    assert (packaging.package(rt, _ingested(rt)) is None) is by_ingest
    [product] = rows(rt, "SELECT * FROM products")
    # Packaged by ingest, published by it too; by package, publish's work is left.
    assert product["status"] == ("published" if by_ingest else "packaged")
    assert product["name"] == CAL + ".zip" and product["content_type"] == "application/zip"
    body = _object(rt, product["distribution_key"])
    checksums = {c["Algorithm"]: c["Value"] for c in product["checksums"]}
    assert checksums["MD5"] == hashlib.md5(body).hexdigest()
    assert product["content_length"] == len(body)
    packaged = _packaged(rt)
    assert (packaged.content_length, packaged.distribution_key) == (
        len(body), product["distribution_key"])
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == {
            f"{CAL}/{p}": b for p, b in files.items()}
    return body


def test_safe_is_published_as_a_deterministic_zip_whatever_its_arrival_form(
        rt: Runtime, inbox: Inbox, clean_catalogue_now) -> None:  # type: ignore[no-untyped-def]
    # package from a folder, ingest from the zip it holds, package from a zip (or a zip's
    # content) above ingest's limit: the same bytes.
    from_folder = _package_cal(rt, inbox, "folder")
    clean_catalogue_now()
    from_zip = _package_cal(rt, inbox, "zip")
    clean_catalogue_now()
    from_large_zip = _package_cal(rt, inbox, "large zip")
    clean_catalogue_now()
    from_large_content = _package_cal(rt, inbox, "large content")
    assert from_folder == from_zip == from_large_zip == from_large_content


def _restored_from_the_journal(rt: Runtime) -> None:
    """The catalogue loses the one product's row: publish, delivered its product.packaged
    again, gets the row back from the journal as it was, and has nothing to do."""
    [before] = rows(rt, "SELECT * FROM products")
    rows(rt, "DELETE FROM products RETURNING id")
    assert publication.publish(rt, _packaged(rt)) is None  # already published by ingest
    [after] = rows(rt, "SELECT * FROM products")
    assert after["status"] == "published" and after["online"]
    assert {k: after[k] for k in products.RESTORED_COLUMNS} == {
        k: before[k] for k in products.RESTORED_COLUMNS}


def test_a_safe_packaged_by_ingest_is_restored_published_from_the_journal(
        rt: Runtime, inbox: Inbox) -> None:
    _package_cal(rt, inbox, "zip")
    _restored_from_the_journal(rt)


def test_packaging_twice_is_a_no_op(rt: Runtime, inbox: Inbox) -> None:
    _package_cal(rt, inbox, "folder")
    assert packaging.package(rt, _ingested(rt)) is None
    assert len(rows(rt, "SELECT id FROM event_journal WHERE type = 'org.auxip.product.packaged.v1'")) == 1


def test_eof_is_served_as_it_arrived_without_a_copy(rt: Runtime, inbox: Inbox) -> None:
    body = (REAL / RESORB).read_bytes()
    ingest(rt, inbox.put(RESORB, body), "ev")
    # Packaged by ingest: a product.ingested delivered to package anyway (a replay, an
    # event journalled before ingest packaged) finds nothing to do and emits nothing.
    assert packaging.package(rt, _ingested(rt)) is None
    [product] = rows(rt, "SELECT * FROM products")
    assert product["status"] == "published" and product["name"] == RESORB
    assert product["distribution_key"] == product["archive_key"]
    assert product["modification_date"] == product["ingestion_date"]
    assert _object(rt, product["distribution_key"]) == body
    packaged = _packaged(rt)
    assert packaged.content_length == len(body)
    checksums = {c.algorithm: c.value for c in packaged.checksums}
    assert checksums["MD5"] == hashlib.md5(body).hexdigest()
    # Published by ingest too: a product.packaged delivered to publish anyway does nothing.
    assert publication.publish(rt, packaged) is None
    for event_type in ("packaged", "published"):
        [journal] = rows(rt, "SELECT count(*) AS n FROM event_journal WHERE type = %s",
                         f"org.auxip.product.{event_type}.v1")
        assert journal["n"] == 1


def test_an_eof_packaged_by_ingest_is_restored_published_from_the_journal(
        rt: Runtime, inbox: Inbox) -> None:
    ingest(rt, inbox.put(RESORB, (REAL / RESORB).read_bytes()), "ev")
    _restored_from_the_journal(rt)


@pytest.mark.parametrize("limit", [None, 0], ids=["by ingest", "by package"])
def test_zipped_eof_is_unzipped_or_zipped_as_configured(rt: Runtime, inbox: Inbox,
                                                        limit: int | None) -> None:
    ingesting = rt if limit is None else _held_up_to(rt, limit)
    body = (REAL / RESORB).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(RESORB, body)
    ingest(ingesting, inbox.put(RESORB + ".zip", buffer.getvalue()), "ev")
    assert (packaging.package(rt, _ingested(rt)) is None) is (limit is None)
    [product] = rows(rt, "SELECT * FROM products")
    assert product["name"] == RESORB
    assert product["status"] == ("published" if limit is None else "packaged")
    assert _object(rt, product["distribution_key"]) == body
    assert product["content_length"] == len(body)


@pytest.mark.parametrize("limit", [None, 0], ids=["by ingest", "by package"])
def test_eof_zipped_when_so_configured(rt: Runtime, inbox: Inbox, limit: int | None) -> None:
    update: dict[str, object] = {"eof_distribution": "zip"}
    if limit is not None:
        update["package_in_ingest_bytes"] = limit
    zipping = Runtime(rt.settings.model_copy(update=update), rt.pool, rt.s3)
    body = (REAL / RESORB).read_bytes()
    ingest(zipping, inbox.put(RESORB, body), "ev")
    [ingested] = rows(rt, "SELECT * FROM products")
    [event] = rows(rt, "SELECT extensions FROM event_journal"
                   " WHERE type = 'org.auxip.product.ingested.v1'")
    if limit is None:  # an object to build, from the bytes ingest holds
        assert ingested["status"] == "published"
        assert event["extensions"]["auxippackaged"] == "true"
        assert packaging.package(zipping, _ingested(rt)) is None
    else:  # above ingest's limit: package's work
        assert ingested["status"] == "ingested"
        assert "auxippackaged" not in event["extensions"]
        assert packaging.package(zipping, _ingested(rt)) is not None
    [product] = rows(rt, "SELECT * FROM products")
    assert product["name"] == RESORB + ".zip"
    with zipfile.ZipFile(io.BytesIO(_object(rt, product["distribution_key"]))) as archive:
        assert archive.namelist() == [RESORB] and archive.read(RESORB) == body


@pytest.mark.parametrize("by", ["ingest", "publish"])
def test_publication_sets_dates_by_retention_and_announces_once(rt: Runtime, inbox: Inbox,
                                                                by: str) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    name, body = demo_products.orbit_eof("A", "AUX_RESORB", start, start + timedelta(hours=3),
                                         start + timedelta(hours=4), max_vectors=3)
    update: dict[str, object] = {"retention_days": "AUX_RESORB=90"}
    if by == "publish":  # an object to build above ingest's limit: package, then publish
        update |= {"eof_distribution": "zip", "package_in_ingest_bytes": 0}
        name += ".zip"
    keeping = Runtime(rt.settings.model_copy(update=update), rt.pool, rt.s3)
    ingest(keeping, inbox.put(name.removesuffix(".zip"), body), "ev")
    if by == "publish":
        assert packaging.package(keeping, _ingested(rt)) is not None
        assert publication.publish(keeping, _packaged(rt)) is not None
    assert publication.publish(keeping, _packaged(rt)) is None
    [product] = rows(rt, "SELECT * FROM products")
    assert product["status"] == "published" and product["online"]
    assert product["eviction_date"] - product["publication_date"] == timedelta(days=90)
    [event] = rows(rt, "SELECT data FROM event_journal WHERE type = 'org.auxip.product.published.v1'")
    assert event["data"]["name"] == name
    assert event["data"]["eviction_date"].startswith(
        (product["publication_date"] + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M"))


def test_kept_products_evict_never() -> None:
    when = publication.eviction_date("AUX_CAL", datetime.now(UTC),
                                     {"AUX_RESORB": 90}, None)
    assert when == publication.KEPT


def test_bad_retention_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        publication.retention_table("AUX_RESORB=ninety")
