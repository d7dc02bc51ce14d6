"""The scrub finds every way catalogue and archive can disagree, and nothing else: a
deleted object, a truncated one, one changed in place (told by its ETag, or only by
reading it), a SAFE product's lost zip or folder, an orphan, an evicted product's
leftovers; objects still in flight are not orphans."""

from __future__ import annotations

import os
import random
from datetime import timedelta

import psycopg

from devstack import demo_products
from shared.adapters import storage
from shared.adapters.runtime import Runtime
from shared.pipeline.integrity import scrub
from shared.pipeline.integrity.scrub import CHECKSUM, MISSING, ORPHAN, SIZE
from tests.pipeline.ingestion.conftest import Inbox
from tests.pipeline.integrity.conftest import START, ingest_files, orbit, product, publish_all


def _products(rt: Runtime, inbox: Inbox, orbits: int = 4) -> tuple[list[str], str]:
    """`orbits` orbit files and one SAFE folder, published; their logical names."""
    files = dict(orbit(n) for n in range(orbits))
    folder, content = demo_products.aux_safe("A", "AUX_CAL", START, START - timedelta(days=2))
    ingest_files(rt, inbox, files | {f"{folder}/{p}": b for p, b in content.items()})
    publish_all(rt)
    return sorted(files), folder


def _found(report: scrub.Report) -> set[tuple[str, str]]:
    return {(f.kind, f.key) for f in report.findings}


def test_an_agreeing_archive_reports_nothing(rt: Runtime, inbox: Inbox) -> None:
    orbits, folder = _products(rt, inbox)
    report = scrub.scrub(rt, full=True, grace_s=0)
    assert report.findings == []
    assert report.products == len(orbits) + 1
    # A SAFE product: its zip and every object of its folder; an orbit: one object.
    safe = product(rt, folder)
    folder_objects = list(storage.list_keys(rt.s3, rt.settings.archive_bucket,
                                            safe["archive_key"]))
    assert report.objects == len(orbits) + 1 + len(folder_objects)
    assert report.objects_read == len(orbits) + 1  # every served object, with --full


def test_every_disagreement_is_found_and_checked_again(rt: Runtime, inbox: Inbox) -> None:
    orbits, folder = _products(rt, inbox, orbits=5)
    bucket = rt.settings.archive_bucket
    deleted, truncated, changed, evicted, kept = (product(rt, n) for n in orbits)
    safe = product(rt, folder)
    storage.delete(rt.s3, bucket, deleted["archive_key"])
    body = storage.get_bytes(rt.s3, bucket, truncated["archive_key"])
    storage.put_bytes(rt.s3, bucket, truncated["archive_key"], body[:-10])
    body = bytearray(storage.get_bytes(rt.s3, bucket, changed["archive_key"]))
    body[100] ^= 0x01
    storage.put_bytes(rt.s3, bucket, changed["archive_key"], bytes(body))
    storage.delete(rt.s3, bucket, safe["distribution_key"])
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE products SET status = 'evicted', online = false WHERE id = %s",
                     (evicted["id"],))  # evicted, its bytes left behind (a crash between)
    storage.put_bytes(rt.s3, bucket, "ingested/AUX_RESORB/stray.EOF", b"nobody's")

    report = scrub.scrub(rt, sample=0, grace_s=0)  # no sample: the ETag tells `changed`
    assert _found(report) == {
        (MISSING, deleted["archive_key"]), (SIZE, truncated["archive_key"]),
        (CHECKSUM, changed["archive_key"]), (MISSING, safe["distribution_key"]),
        (ORPHAN, evicted["archive_key"]), (ORPHAN, "ingested/AUX_RESORB/stray.EOF")}
    by_key = {f.key: f for f in report.findings}
    assert by_key[deleted["archive_key"]].served and by_key[deleted["archive_key"]].name
    assert "left by evicted product" in by_key[evicted["archive_key"]].detail
    assert by_key[truncated["archive_key"]].detail.startswith(
        f"{truncated['content_length'] - 10} bytes")
    assert report.damaged_products().keys() == {deleted["id"], truncated["id"],
                                                changed["id"], safe["id"]}
    assert kept["id"] not in report.damaged_products()

    # Young objects may belong to an ingest in progress: not orphans yet.
    young = scrub.scrub(rt, sample=0)
    assert (ORPHAN, "ingested/AUX_RESORB/stray.EOF") not in _found(young)
    assert (MISSING, deleted["archive_key"]) in _found(young)


def test_a_lost_safe_folder_is_one_finding(rt: Runtime, inbox: Inbox) -> None:
    _, folder = _products(rt, inbox, orbits=1)
    safe = product(rt, folder)
    storage.delete_prefix(rt.s3, rt.settings.archive_bucket, safe["archive_key"])
    report = scrub.scrub(rt, sample=0, grace_s=0)
    assert [(f.kind, f.key, f.served) for f in report.findings] == [
        (MISSING, safe["archive_key"], False)]


def test_bytes_changed_behind_a_multipart_etag_are_found_by_reading(
        rt: Runtime, inbox: Inbox) -> None:
    """A multipart object's ETag is no MD5: only its bytes tell, read for the sample."""
    orbits, _ = _products(rt, inbox, orbits=1)
    row = product(rt, orbits[0])
    bucket = rt.settings.archive_bucket
    size = int(row["content_length"])
    other = os.urandom(size)  # other bytes of the catalogued size, in one multipart part
    copy = rt.s3.create_multipart_upload(Bucket=bucket, Key=row["archive_key"])
    part = rt.s3.upload_part(Bucket=bucket, Key=row["archive_key"], PartNumber=1,
                             UploadId=copy["UploadId"], Body=other)
    rt.s3.complete_multipart_upload(
        Bucket=bucket, Key=row["archive_key"], UploadId=copy["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert "-" in storage.head(rt.s3, bucket, row["archive_key"])["etag"]

    assert scrub.scrub(rt, sample=0, grace_s=0).findings == []  # the listing cannot tell
    sampled = scrub.scrub(rt, sample=2, grace_s=0, rng=random.Random(1))  # both served
    assert [(f.kind, f.key) for f in sampled.findings] == [(CHECKSUM, row["archive_key"])]
    assert "MD5" in sampled.findings[0].detail


def test_an_evicted_products_deleted_bytes_are_not_missing(rt: Runtime, inbox: Inbox) -> None:
    orbits, _ = _products(rt, inbox, orbits=1)
    row = product(rt, orbits[0])
    storage.delete(rt.s3, rt.settings.archive_bucket, row["archive_key"])
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE products SET status = 'evicted', online = false WHERE id = %s",
                     (row["id"],))
    assert scrub.scrub(rt, sample=0, grace_s=0).findings == []


def test_slices_of_a_pass_find_what_one_whole_scrub_finds_each_key_once(
        rt: Runtime, inbox: Inbox) -> None:
    """The verify function's scrub: a slice a tick, from where the last one stopped."""
    orbits, folder = _products(rt, inbox, orbits=5)
    bucket = rt.settings.archive_bucket
    deleted, changed = product(rt, orbits[0]), product(rt, orbits[3])
    storage.delete(rt.s3, bucket, deleted["archive_key"])
    body = bytearray(storage.get_bytes(rt.s3, bucket, changed["archive_key"]))
    body[100] ^= 0x01
    storage.put_bytes(rt.s3, bucket, changed["archive_key"], bytes(body))
    storage.delete(rt.s3, bucket, product(rt, folder)["distribution_key"])
    storage.put_bytes(rt.s3, bucket, "ingested/AUX_RESORB/stray.EOF", b"nobody's")
    whole = scrub.scrub(rt, sample=0, grace_s=0)
    assert {kind for kind, _ in _found(whole)} == {MISSING, CHECKSUM, ORPHAN}

    slices = [scrub.scrub_next(rt, budget=2, sample=0, grace_s=0)]
    while slices[-1].resume_after:
        assert len(slices) < 20, "the slices do not reach the end"
        slices.append(scrub.scrub_next(rt, budget=2, sample=0, grace_s=0))
        assert slices[-1].after == slices[-2].resume_after  # on from where it stopped
    assert len(slices) >= 3
    assert slices[0].after == ""
    # Every object listed once (a SAFE folder's objects never split from their product:
    # none of them an orphan), every disagreement found, each by one slice.
    assert sum(s.objects for s in slices) == whole.objects
    found = [(f.kind, f.key) for s in slices for f in s.findings]
    assert sorted(found) == sorted(_found(whole))
    # The pass is complete: the next tick begins the next one at the first key.
    assert scrub.scrub_next(rt, budget=2, sample=0, grace_s=0).after == ""
