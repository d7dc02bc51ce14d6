"""The fold that rebuilds a product row from its journalled events (shared/adapters/catalogue/restore.py)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from events import types
from events.products import (
    Checksum,
    ProductEvicted,
    ProductIngested,
    ProductPackaged,
    ProductPublished,
)
from shared.adapters.catalogue import restore
from shared.core.checksums import MD5, XXH3

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
ID = uuid.uuid4()
NAME = "S1A_AUX_CAL_V20190228T092500_G20210104T141310.SAFE"


def _ingested() -> tuple[str, dict]:
    return types.PRODUCT_INGESTED, ProductIngested(
        product_id=ID, logical_name=NAME, product_type="AUX_CAL", platform_serial="A",
        layout="safe-folder", archive_bucket="archive", archive_key=f"ingested/AUX_CAL/{NAME}/",
        fingerprint="f" * 32, content_length=1234,
        checksums=[Checksum(algorithm=MD5, value="a" * 32),
                   Checksum(algorithm=XXH3, value="b" * 32)],
        content_start=T0 - timedelta(days=700), content_end=datetime.max.replace(tzinfo=UTC),
        attributes={"productType": "AUX_CAL", "beginningDateTime": "2019-02-28T09:25:00.000Z",
                    "orbitNumber": 7, "ratio": 0.5, "flag": True},
        arrived_at=T0, ingested_at=T0 + timedelta(seconds=1),
    ).model_dump(mode="json")


def _packaged() -> tuple[str, dict]:
    return types.PRODUCT_PACKAGED, ProductPackaged(
        product_id=ID, name=NAME + ".zip", product_type="AUX_CAL", archive_bucket="archive",
        distribution_key=f"products/AUX_CAL/{NAME}.zip", content_type="application/zip",
        content_length=999, checksums=[Checksum(algorithm=MD5, value="c" * 32)],
        packaged_at=T0 + timedelta(seconds=2),
    ).model_dump(mode="json")


def _published() -> tuple[str, dict]:
    return types.PRODUCT_PUBLISHED, ProductPublished(
        product_id=ID, name=NAME + ".zip", product_type="AUX_CAL", platform_serial="A",
        content_length=999, content_start=T0, content_end=T0, origin_date=T0,
        publication_date=T0 + timedelta(seconds=3), eviction_date=T0 + timedelta(days=30),
    ).model_dump(mode="json")


def _evicted() -> tuple[str, dict]:
    return types.PRODUCT_EVICTED, ProductEvicted(
        product_id=ID, name=NAME + ".zip", product_type="AUX_CAL",
        evicted_at=T0 + timedelta(days=30, seconds=5),
    ).model_dump(mode="json")


def test_an_ingested_event_alone_gives_the_row_ingest_wrote() -> None:
    row = restore.fold([_ingested()])
    assert row is not None
    assert row["status"] == "ingested" and row["name"] is None and not row["online"]
    assert row["ingestion_date"] == row["modification_date"] == T0 + timedelta(seconds=1)
    assert row["origin_date"] == T0
    assert row["checksums"] == [
        {"Algorithm": MD5, "Value": "a" * 32, "ChecksumDate": "2025-03-01T12:00:01.123Z"},
        {"Algorithm": XXH3, "Value": "b" * 32, "ChecksumDate": "2025-03-01T12:00:01.123Z"}]
    assert row["attributes"]["orbitNumber"] == 7 and row["attributes"]["flag"] is True
    assert type(row["attributes"]["orbitNumber"]) is int
    assert set(row) == set(restore.products.RESTORED_COLUMNS)


def test_the_life_events_fold_in_life_order_whatever_order_they_come_in() -> None:
    events = [_ingested(), _packaged(), _published(), _evicted()]
    expected = restore.fold(events)
    assert expected is not None
    assert expected["status"] == "evicted" and expected["online"] is False
    assert expected["publication_date"] == T0 + timedelta(seconds=3)
    assert expected["name"] == NAME + ".zip" and expected["content_length"] == 999
    assert expected["checksums"][0]["ChecksumDate"] == "2025-03-01T12:00:02.123Z"
    for order in itertools.permutations(events):
        assert restore.fold(order) == expected


def test_a_row_is_only_as_far_as_its_journal_goes() -> None:
    assert restore.fold([]) is None
    assert restore.fold([_packaged(), _published()]) is None  # never ingested here
    published = restore.fold([_ingested(), _packaged(), _published()])
    assert published is not None and published["status"] == "published" and published["online"]
    assert published["eviction_date"] == T0 + timedelta(days=30)
    # A publication without its packaging cannot be applied: the row stays ingested, and
    # the replayed product.ingested packages it again.
    skipped = restore.fold([_ingested(), _published()])
    assert skipped is not None and skipped["status"] == "ingested"
