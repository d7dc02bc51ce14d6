"""From an object PUT into the inbox to a published product (or quarantine), through RGW's
notification, the inbox adapter, the event router and the ingest/package/publish functions."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack import demo_products
from devstack.stack.up import StackInfo
from shared.adapters import storage
from tests.core import hostile
from tests.e2e.conftest import GRACE_S, notify_again, ping, query, wait_until

REAL = Path(__file__).parents[1] / "samples" / "real"
COMPLETE_SAFE = {
    "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE": ("AUX_CAL", "A"),
    "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE": ("AUX_INS", "A"),
    "S1A_AUX_PP1_V20171017T080000_G20171013T101236.SAFE": ("AUX_PP1", "A"),
}
EOF_KNOWN = {
    "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF": (
        "AUX_RESORB", "A", datetime(2017, 12, 13, 10, 27, 37, tzinfo=UTC),
        datetime(2017, 12, 13, 13, 45, 7, tzinfo=UTC)),
    "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF": (
        "MPL_ORBPRE", "A", datetime(2017, 12, 8, 20, 3, 9, tzinfo=UTC),
        datetime(2017, 12, 15, 20, 3, 9, tzinfo=UTC)),
    "S1B_OPER_MPL_ORBSCT_20160425T224606_99999999T999999_0017.EOF": (
        "MPL_ORBSCT", "B", datetime(2016, 4, 25, 22, 46, 6, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
}
MANIFEST_ONLY = [p.name for p in REAL.iterdir()
                 if p.is_dir() and p.name.endswith(".SAFE") and p.name not in COMPLETE_SAFE]
UNKNOWN = ["S1A_OPER_REP__SUP___20181208T070000_20181208T111500_0001.EOF",
           "S1A_OPER_AUX_OBMEMC_PDMC_20140201T000000.xml"]


def _put(info: StackInfo, key: str, body: bytes) -> None:
    storage.put_bytes(storage.client(info.settings), info.settings.inbox_bucket, key, body)


def _folder(name: str) -> dict[str, bytes]:
    root = REAL / name
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("safe_form", ["folder", "zip"])
def test_real_samples_end_published_or_quarantined(fresh: StackInfo, safe_form: str) -> None:
    s = fresh.settings
    uploads: list[tuple[str, bytes]] = []
    for name in EOF_KNOWN:
        uploads.append((name, (REAL / name).read_bytes()))
    for name in UNKNOWN:
        uploads.append((name, (REAL / name).read_bytes()))
    for name in COMPLETE_SAFE:
        files = _folder(name)
        if safe_form == "zip":
            uploads.append((name + ".zip", demo_products.zip_folder(name, files)))
        else:
            uploads += [(f"{name}/{path}", body) for path, body in files.items()]
    for name in MANIFEST_ONLY:
        uploads += [(f"{name}/{path}", body) for path, body in _folder(name).items()]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: _put(fresh, *item), uploads))

    published = {**{n: v[:2] for n, v in EOF_KNOWN.items()}, **COMPLETE_SAFE}
    wait_until("the real samples to be published",
               lambda: len(query(s, "SELECT 1 FROM products WHERE status = 'published'"))
               >= len(published),
               report=lambda: query(s, "SELECT logical_name, status FROM products"))
    wait_until("the unknown types to be quarantined",
               lambda: len(query(s, "SELECT 1 FROM rejections")) >= len(UNKNOWN),
               report=lambda: query(s, "SELECT name, reason FROM rejections"))
    wait_until("every manifest-only folder to wait",
               lambda: len(query(s, "SELECT 1 FROM pending_folders")) == len(MANIFEST_ONLY),
               report=lambda: query(s, "SELECT prefix FROM pending_folders"))
    time.sleep(GRACE_S + 0.5)
    ping(fresh, "ingest")  # the PingSource's sweep

    rows = query(s, "SELECT * FROM products")
    assert {r["logical_name"]: (r["product_type"], r["platform_serial"]) for r in rows} == published
    for row in rows:
        assert row["status"] == "published" and row["online"]
        if row["logical_name"] in EOF_KNOWN:
            _, _, start, end = EOF_KNOWN[row["logical_name"]]
            assert (row["content_start"], row["content_end"]) == (start, end)
            assert row["name"] == row["logical_name"]
        else:
            assert row["content_start"] == datetime(2017, 10, 17, 8, tzinfo=UTC)
            assert row["name"] == row["logical_name"] + ".zip"
        assert row["publication_date"] >= row["origin_date"]
    reasons = {r["name"]: r["reason"] for r in query(s, "SELECT name, reason FROM rejections")}
    assert reasons == {**{n: "type_unknown" for n in UNKNOWN},
                       **{n: "safe_incomplete" for n in MANIFEST_ONLY}}
    assert query(s, "SELECT 1 FROM pending_folders") == []
    client = storage.client(s)
    assert list(storage.list_keys(client, s.inbox_bucket)) == []
    quarantined = list(storage.list_keys(client, s.quarantine_bucket))
    assert len(quarantined) == len(UNKNOWN) + len(MANIFEST_ONLY)
    for row in rows:  # the distribution object is there, with the catalogued size
        head = storage.head(client, s.archive_bucket, row["distribution_key"])
        assert head is not None and head["size"] == row["content_length"]


def test_200_files_at_once_each_notified_twice(fresh: StackInfo) -> None:
    s = fresh.settings
    start = datetime(2025, 1, 1, tzinfo=UTC)
    files = []
    for i in range(200):
        t = start + timedelta(minutes=90 * i)
        files.append(demo_products.orbit_eof("ABC"[i % 3], "AUX_RESORB", t, t + timedelta(minutes=200),
                                             t + timedelta(minutes=210), max_vectors=4))
    client = storage.client(s)

    def put(item: tuple[str, bytes]) -> tuple[str, int, str]:
        name, body = item
        etag = storage.put_bytes(client, s.inbox_bucket, name, body)
        return name, len(body), etag

    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(put, files))
    for chunk in range(0, len(stored), 50):
        notify_again(fresh, s.inbox_bucket, stored[chunk:chunk + 50])

    names = {name for name, _ in files}
    wait_until("200 products to be published",
               lambda: len(query(s, "SELECT 1 FROM products WHERE status = 'published'")) >= 200,
               timeout_s=180,
               report=lambda: query(s, "SELECT status, count(*) FROM products GROUP BY 1"))
    rows = query(s, "SELECT name FROM products")
    assert sorted(r["name"] for r in rows) == sorted(names)
    assert query(s, "SELECT * FROM rejections") == []
    published_events = query(s, "SELECT subject FROM event_journal"
                                " WHERE type = 'org.auxip.product.published.v1'")
    assert sorted(e["subject"] for e in published_events) == sorted(names)
    assert list(storage.list_keys(client, s.inbox_bucket)) == []


def test_hostile_files_are_quarantined_and_the_pipeline_goes_on(fresh: StackInfo,
                                                                tmp_path: Path) -> None:
    s = fresh.settings
    safe = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
    lying_name, lying = demo_products.orbit_eof(
        "A", "AUX_RESORB", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 3, tzinfo=UTC),
        datetime(2024, 1, 1, 4, tzinfo=UTC), max_vectors=3, file_type="AUX_POEORB")
    virus_name = lying_name.replace("20240101T040000", "20240101T050000")
    cases = {
        safe + ".zip": (hostile.zip_slip(tmp_path / "s.zip", f"{safe}/../../x").read_bytes(), "archive_unsafe"),
        safe.replace("CAL", "INS") + ".zip": (hostile.zip_bomb(tmp_path / "b.zip", mib=60).read_bytes(), "archive_unsafe"),
        virus_name: (hostile.eicar_bytes(), "virus_found"),
        lying_name: (lying, "content_mismatch"),
        "S1A_NOT_A_PRODUCT.EOF": (b"<x/>", "name_invalid"),
        safe.replace("CAL", "PP1") + ".zip": (b"PK\x03\x04 truncated", "archive_corrupt"),
    }
    for key, (body, _) in cases.items():
        _put(fresh, key, body)
    wait_until("every hostile file to be quarantined",
               lambda: len(query(s, "SELECT 1 FROM rejections")) >= len(cases),
               report=lambda: query(s, "SELECT name, reason FROM rejections"))
    reasons = {r["name"]: r["reason"] for r in query(s, "SELECT name, reason FROM rejections")}
    assert reasons == {key: reason for key, (_, reason) in cases.items()}
    good = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"
    _put(fresh, good, (REAL / good).read_bytes())
    wait_until("a good file after them to be published",
               lambda: query(s, "SELECT 1 FROM products WHERE status = 'published'") != [])
    assert query(s, "SELECT 1 FROM products WHERE name <> %s", good) == []
