"""The scrub: what the catalogue says the archive holds against what the archive holds.

One pass merges two sorted streams, the catalogue's expected objects (SQL, key order) and
the archive bucket's listing (S3 key order), so a million products cost a million rows
read and a thousand listing pages, never a HEAD each:

- `missing`: a product's object (or every object of its SAFE folder) is not listed;
- `size`: the object $value serves is not its catalogued size;
- `checksum`: its bytes are not its catalogued MD5/XXH3. Read for a random sample of
  products (`sample`), for all with `full`, and always when the listing's ETag (the MD5
  of a single-part object) differs from the catalogued MD5;
- `orphan`: an object no product claims (an evicted product's leftovers included).

Nothing is reported on the first sight alone: each finding is checked again against a
fresh catalogue row and the object itself, and objects younger than `grace_s` are not
orphans yet (ingest copies into the archive before it commits the product's row), so a
scrub running beside ingestion and eviction reports only what stays wrong.

`scrub` compares the whole key space (`auxip products verify`), or one slice of it: the
keys after `after`, up to `budget` of the catalogue's objects. `scrub_next` is the
scheduled one (the verify function): each tick the next slice, from where the last one
stopped (kept in the catalogue), so a tick's time and memory stay bounded whatever the
catalogue's size, a tick cut short costs only its slice, and every key is checked once a
pass. A slice ends just before a catalogue key, so a SAFE folder (its objects sort between
its prefix and the next key) is never split from its objects, and an object no product of
the slice claims is an orphan of the whole catalogue.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any
from uuid import UUID

import psycopg
from botocore.exceptions import ClientError
from psycopg.rows import dict_row

from shared.adapters import storage
from shared.adapters.catalogue import integrity
from shared.adapters.runtime import Runtime
from shared.adapters.telemetry import metrics
from shared.core.checksums import MD5, XXH3, Checksums, Digest

log = logging.getLogger(__name__)

MISSING, SIZE, CHECKSUM, ORPHAN = "missing", "size", "checksum", "orphan"
DEFAULT_SAMPLE = 20
DEFAULT_GRACE_S = 600.0
_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Finding:
    kind: str  # missing | size | checksum | orphan
    key: str  # the archive key (a SAFE folder's prefix when all of it is missing)
    detail: str
    product_id: UUID | None = None
    name: str | None = None
    status: str | None = None
    served: bool = False  # the object $value serves (the product cannot be downloaded)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    products: int = 0
    objects: int = 0
    bytes_read: int = 0
    objects_read: int = 0
    seconds: float = 0.0
    after: str = ""  # the slice began after this key ('' : at the first)
    resume_after: str = ""  # where the next slice begins; '' : this one reached the end

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def damaged_products(self) -> dict[UUID, list[Finding]]:
        """The products with a finding, each with its findings."""
        found: dict[UUID, list[Finding]] = {}
        for finding in self.findings:
            if finding.product_id is not None and finding.kind != ORPHAN:
                found.setdefault(finding.product_id, []).append(finding)
        return found


@dataclass
class _Expected:
    row: dict[str, Any]
    matched: bool = False

    @property
    def key(self) -> str:
        return str(self.row["key"])

    @property
    def folder(self) -> bool:
        return self.key.endswith("/")


def scrub_next(rt: Runtime, *, budget: int, sample: int = DEFAULT_SAMPLE,
               grace_s: float = DEFAULT_GRACE_S, rng: random.Random | None = None) -> Report:
    """The next slice of at most `budget` catalogue objects, from where the last slice
    stopped; then the position moves on (a slice that fails leaves it: checked again)."""
    with rt.pool.connection() as conn:
        after = integrity.scrub_position(conn)
    report = scrub(rt, after=after, budget=budget, sample=sample, grace_s=grace_s, rng=rng)
    with rt.pool.connection() as conn:
        integrity.save_scrub_position(conn, report.resume_after)
    return report


def scrub(rt: Runtime, *, full: bool = False, sample: int = DEFAULT_SAMPLE,
          grace_s: float = DEFAULT_GRACE_S, rng: random.Random | None = None,
          after: str = "", budget: int | None = None) -> Report:
    """Compare the catalogue with the archive bucket, all of both or the slice after the
    key `after` of at most `budget` catalogue objects (see the module's doc)."""
    began = time.monotonic()
    report = Report(after=after)
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_s)
    candidates: list[Finding] = []
    suspects: list[tuple[dict[str, Any], str]] = []  # (row, key): read whatever the sample
    chosen: list[tuple[dict[str, Any], str]] = []
    seen_served = 0
    pick = rng or random.Random()
    bucket = rt.settings.archive_bucket
    ids: set[UUID] = set()
    last = after

    with psycopg.connect(rt.settings.database_url) as conn:  # a snapshot, streamed
        rows: Iterable[dict[str, Any]]
        if budget is None:
            rows, stop = integrity.expected_objects(conn, after=after), None
        else:
            rows, stop = _slice(conn, after, budget)
        expected = (_Expected(row) for row in rows)
        listed = storage.list_listed(rt.s3, bucket, start_after=after,
                                     page_size=min(1000, max(1, budget or 1000)))
        if stop is not None:
            listed = takewhile(lambda obj: obj.key < stop, listed)  # the next slice's
        for entry, obj in _merge(expected, listed):
            last = max(last, entry.key if entry else "", obj.key if obj else "")
            if obj is not None:
                report.objects += 1
            if entry is None:
                assert obj is not None
                candidates.append(Finding(ORPHAN, obj.key, "no product claims it"))
                continue
            row = entry.row
            evicted = row["status"] == "evicted"
            if not evicted:
                ids.add(row["id"])
            if obj is None:
                if not entry.matched and not evicted:
                    candidates.append(_finding(MISSING, entry.key, row, "not in the archive"))
                continue
            if evicted:
                candidates.append(Finding(ORPHAN, obj.key, f"left by evicted product"
                                          f" {row['name'] or row['logical_name']}",
                                          row["id"], row["name"], row["status"]))
                continue
            if entry.folder or not row["served"]:
                continue
            if obj.size != int(row["content_length"]):
                candidates.append(_finding(SIZE, obj.key, row, f"{obj.size} bytes, the"
                                           f" catalogue says {row['content_length']}"))
                continue
            md5 = _catalogued(row).get(MD5)
            if md5 and _PLAIN_MD5.fullmatch(obj.etag) and obj.etag != md5:
                suspects.append((row, obj.key))  # the listing says it changed: read it
            elif not full:  # reservoir sampling: every served object equally likely
                seen_served += 1
                if len(chosen) < sample:
                    chosen.append((row, obj.key))
                elif (slot := pick.randrange(seen_served)) < sample:
                    chosen[slot] = (row, obj.key)
    report.products = len(ids)
    report.resume_after = "" if stop is None else last

    for row, key in [*suspects, *chosen]:
        _check_bytes(rt, report, row, key, candidates)
    if full:  # every served object, streamed again rather than held from the first pass
        done = {f.key for f in candidates} | {key for _, key in suspects}
        with psycopg.connect(rt.settings.database_url) as conn:
            for row in integrity.served_objects(conn):
                if row["key"] not in done:
                    _check_bytes(rt, report, row, row["key"], candidates)

    with rt.pool.connection() as conn:
        report.findings = [f for f in candidates if _stands(rt, conn, f, cutoff)]
    for finding in report.findings:
        metrics.archive_disagreement("verify", finding.kind)
        log.error("archive disagrees with the catalogue: %s %s (%s)%s", finding.kind,
                  finding.key, finding.detail,
                  f" - product {finding.name or finding.product_id}" if finding.product_id
                  else "")
    report.seconds = time.monotonic() - began
    return report


def _slice(conn: psycopg.Connection, after: str, budget: int
           ) -> tuple[list[dict[str, Any]], str | None]:
    """The catalogue's first `budget` objects after `after`, and the key the slice stops
    before: the next one (None: the rows ran out, the slice goes to the end). Rows naming
    one key stay in one slice, however many there are."""
    limit = budget + 1
    while True:
        rows = list(integrity.expected_objects(conn, after=after, limit=limit))
        if len(rows) < limit:
            return rows, None
        stop = str(rows[-1]["key"])
        kept = [row for row in rows if row["key"] < stop]
        if kept:
            return kept, stop
        limit *= 2  # all of them one key (a damaged catalogue): take more


def _merge(expected: Iterator[_Expected], listed: Iterator[storage.Listed]
           ) -> Iterator[tuple[_Expected | None, storage.Listed | None]]:
    """(expected entry, listed object) pairs in key order: an object with the entry that
    claims it (its own key, or its SAFE folder's prefix), an entry with None once passed
    (missing unless matched), an object with None when nothing claims it."""
    entry = next(expected, None)
    for obj in listed:
        while entry is not None and entry.key < obj.key and not (
                entry.folder and obj.key.startswith(entry.key)):
            yield entry, None
            entry = next(expected, None)
        if entry is not None and entry.folder and obj.key.startswith(entry.key):
            entry.matched = True
            yield entry, obj
            continue
        if entry is not None and entry.key == obj.key:
            entry.matched = True
            yield entry, obj
            # Two rows naming one object (a damaged catalogue) both see it.
            following = next(expected, None)
            while following is not None and following.key == obj.key:
                following.matched = True
                yield following, obj
                following = next(expected, None)
            entry = following
            continue
        yield None, obj
    while entry is not None:
        yield entry, None
        entry = next(expected, None)


def _check_bytes(rt: Runtime, report: Report, row: dict[str, Any], key: str,
                 candidates: list[Finding]) -> None:
    """Read one served object and compare it with its catalogued checksums."""
    found = _read(rt, key)
    report.objects_read += 1
    report.bytes_read += found.size if found else 0
    if found is None:
        candidates.append(_finding(MISSING, key, row, "not in the archive"))
        return
    differs = _differs(row, found)
    if differs:
        candidates.append(_finding(CHECKSUM, key, row, differs))


def _finding(kind: str, key: str, row: dict[str, Any], detail: str) -> Finding:
    return Finding(kind, key, detail, row["id"], row["name"] or row["logical_name"],
                   row["status"], bool(row["served"]))


def _catalogued(row: dict[str, Any]) -> dict[str, str]:
    return {str(c.get("Algorithm")): str(c.get("Value", "")).lower()
            for c in row.get("checksums") or [] if isinstance(c, dict)}


def _differs(row: dict[str, Any], found: Checksums) -> str | None:
    sums = _catalogued(row)
    for algorithm, value in ((MD5, found.md5), (XXH3, found.xxh3)):
        if sums.get(algorithm) and sums[algorithm] != value:
            return f"{algorithm} {value}, the catalogue says {sums[algorithm]}"
    if found.size != int(row["content_length"]):
        return f"{found.size} bytes read, the catalogue says {row['content_length']}"
    return None


def _read(rt: Runtime, key: str) -> Checksums | None:
    digest = Digest()
    try:
        for chunk in storage.iter_chunks(rt.s3, rt.settings.archive_bucket, key):
            digest.update(chunk)
    except ClientError as error:
        if storage.is_missing(error):
            return None
        raise
    return digest.result()


def _stands(rt: Runtime, conn: psycopg.Connection, finding: Finding, cutoff: datetime) -> bool:
    """The finding checked once more against the catalogue and archive as they are now."""
    bucket = rt.settings.archive_bucket
    if finding.kind == ORPHAN:
        info = storage.head(rt.s3, bucket, finding.key)
        if info is None or (info["last_modified"] and info["last_modified"] > cutoff):
            return False  # gone, or too young: an ingest or packaging in progress
        return integrity.claimed(conn, finding.key) is None
    assert finding.product_id is not None
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM products WHERE id = %s", (finding.product_id,)).fetchone()
    if row is None or row["status"] == "evicted":
        return False
    if finding.key not in (row["distribution_key"], row["archive_key"]):
        return False  # packaged meanwhile: another object now
    if finding.kind == MISSING:
        if finding.key.endswith("/"):
            return next(storage.list_keys(rt.s3, bucket, finding.key), None) is None
        return storage.head(rt.s3, bucket, finding.key) is None
    if finding.kind == SIZE:
        info = storage.head(rt.s3, bucket, finding.key)
        return info is not None and info["size"] != int(row["content_length"])
    return True  # checksum: the bytes themselves were read

