"""The ingest step: an object in the inbox becomes an archived, catalogued product, or goes
to quarantine with a reason. Idempotent under at-least-once delivery:

- one product at a time per logical name (a PostgreSQL advisory lock), so the objects of a
  SAFE folder arriving together ingest it once;
- bytes are copied to the archive first, the catalogue row and its event commit together,
  and only then is the inbox cleared: a crash at any point is mended by the redelivery;
- the same name with the same content again is a no-op, unless the archive lost the
  product's objects (or holds other bytes under their keys): then they are put back from
  this arrival, the distribution object packaged again, as catalogued (`restored`);
- with other content, a conflict.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

import psycopg
from cloudevents.http import CloudEvent

from events import envelope, types
from events.files import FileArrived, FileRejected, RejectReason
from events.products import Checksum, ProductIngested
from shared.adapters import outbox, storage
from shared.adapters.catalogue import (
    folders,
    integrity,
    products,
    publication_clock,
    rejections,
    restore,
)
from shared.adapters.runtime import Runtime
from shared.adapters.telemetry import metrics
from shared.adapters.telemetry.tracing import current_trace_extensions
from shared.core import attributes, naming
from shared.core.archive_safety import ArchiveLimits
from shared.core.arrival import Arrival, is_folder_marker, locate
from shared.core.attacks import Attack
from shared.core.checksums import MD5, XXH3
from shared.pipeline import packaging, publication
from shared.pipeline.ingestion import inspection, threats
from shared.pipeline.ingestion.inspection import Gone, Incomplete, Inspected, Limits, Refused

log = logging.getLogger(__name__)

_IDS = uuid.UUID("6f1c1a52-55a4-4b43-9d0e-5e3b2a8f7c11")  # namespace of derived ids
_MAX_KEY_BYTES = 1024  # S3's limit on an object key


class Outcome(StrEnum):
    INGESTED = "ingested"
    DUPLICATE = "duplicate"
    RESTORED = "restored"  # a duplicate whose archive objects were missing: put back
    REJECTED = "rejected"
    PENDING = "pending"
    GONE = "gone"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    name: str
    detail: str = ""
    event_ids: tuple[str, ...] = ()


def ingest(rt: Runtime, arrived: FileArrived, event_id: str) -> Result:
    if is_folder_marker(arrived.key, arrived.size):
        return Result(Outcome.IGNORED, arrived.key, "folder marker")
    arrival = locate(arrived.bucket, arrived.key)
    try:
        name = naming.parse(arrival.name, _type_table(rt.settings.extra_product_types))
    except naming.NameRejected as error:
        with _product_lock(rt, f"{arrival.bucket}/{arrival.folder_prefix or arrival.key}") as conn:
            return _reject_arrival(rt, conn, arrival, arrived, RejectReason(error.reason),
                                   error.detail, None, event_id)
    with _product_lock(rt, name.logical_name) as conn:
        return _ingest_locked(rt, conn, arrival, arrived, name, event_id)


def sweep_folders(rt: Runtime, grace_s: float, event_id: str) -> list[Result]:
    """Quarantine SAFE folders that stayed incomplete for `grace_s` since their last object."""
    results = []
    with rt.pool.connection() as conn:
        stale = folders.stale(conn, grace_s)
    for row in stale:
        arrival = Arrival(row["bucket"], row["prefix"] + inspection.MANIFEST,
                          row["logical_name"], row["prefix"])
        arrived = FileArrived(bucket=row["bucket"], key=arrival.key, size=0,
                              arrived_at=row["first_seen"])
        with _product_lock(rt, row["logical_name"]) as conn:
            with conn.transaction():
                still = folders.stale(conn, grace_s)
            if not any(r["prefix"] == row["prefix"] for r in still):
                continue  # an object arrived meanwhile and reset its clock
            missing = row["missing"]
            results.append(_reject_arrival(
                rt, conn, arrival, arrived, RejectReason.SAFE_INCOMPLETE,
                f"no complete SAFE after {grace_s:.0f} s; missing: {', '.join(missing[:10])}",
                None, f"{event_id}:{row['prefix']}"))
    return results


def _ingest_locked(rt: Runtime, conn: psycopg.Connection, arrival: Arrival,
                   arrived: FileArrived, name: naming.ProductName, event_id: str) -> Result:
    limits = Limits(max_file_bytes=rt.settings.max_file_bytes, archive=ArchiveLimits())
    scanner = rt.scanner()
    # Held until the product is catalogued: a product of one object is packaged from it.
    with tempfile.TemporaryDirectory(prefix="auxip-ingest-") as tmp:
        workdir = Path(tmp)
        try:
            if arrival.is_folder:
                inspected = inspection.inspect_folder(rt.s3, scanner, arrival, name, limits,
                                                      workdir)
            else:
                inspected = inspection.inspect_file(rt.s3, scanner, arrival, name, limits,
                                                    workdir)
        except Gone:
            existing = products.find_by_logical_name(conn, name.logical_name)
            detail = "already ingested" if existing else "object no longer in the inbox"
            log.info("%s: %s", arrival.key, detail)
            return Result(Outcome.GONE, name.name, detail)
        except Incomplete as waiting:
            with conn.transaction():
                folders.touch(conn, arrival.bucket, arrival.folder_prefix or "",
                              name.logical_name, waiting.missing)
            return Result(Outcome.PENDING, name.name, str(waiting))
        except Refused as refused:
            return _reject_arrival(rt, conn, arrival, arrived, refused.reason, refused.detail,
                                   None, event_id, attack=refused.attack)
        return _catalogue(rt, conn, arrival, arrived, inspected, event_id, workdir)


def _catalogue(rt: Runtime, conn: psycopg.Connection, arrival: Arrival, arrived: FileArrived,
               inspected: Inspected, event_id: str, workdir: Path) -> Result:
    """An inspected arrival: a new product, a duplicate, or a conflict."""
    name = inspected.name
    product_id = uuid.uuid5(_IDS, f"product:{name.logical_name}:{inspected.fingerprint}")
    existing, in_journal = restore.catalogued(conn, name.logical_name, product_id)
    if existing is not None:
        if existing["fingerprint"] == inspected.fingerprint and existing["status"] == "evicted":
            # Its retention ended and its bytes are gone: dropping it as a duplicate would
            # lose them silently, publishing it again is a decision for an operator.
            return _reject_arrival(
                rt, conn, arrival, arrived, RejectReason.CONFLICT,
                f"{name.logical_name} was published and then evicted"
                f" ({existing['modification_date'].astimezone(UTC):%Y-%m-%dT%H:%M:%SZ});"
                " not published again",
                inspected.fingerprint, event_id)
        if existing["fingerprint"] == inspected.fingerprint:
            return _duplicate(rt, conn, existing, arrival, arrived, inspected, event_id,
                              "same content already ingested")
        return _reject_arrival(
            rt, conn, arrival, arrived, RejectReason.CONFLICT,
            f"{name.logical_name} is catalogued with other content (fingerprint "
            f"{existing['fingerprint']}, this one {inspected.fingerprint})",
            inspected.fingerprint, event_id)
    return _accept(rt, conn, arrival, arrived, inspected, event_id, product_id, in_journal,
                   workdir)


def _accept(rt: Runtime, conn: psycopg.Connection, arrival: Arrival, arrived: FileArrived,
            inspected: Inspected, event_id: str, product_id: uuid.UUID,
            in_journal: bool, workdir: Path) -> Result:
    name = inspected.name
    s = rt.settings
    restored = False
    if in_journal:  # rare: a transaction only then
        with conn.transaction():
            restored = restore.restore(conn, product_id)
    if restored:  # the catalogue lost a row the journal holds: the same bytes came again
        row = products.get(conn, product_id)
        assert row is not None
        return _duplicate(rt, conn, row, arrival, arrived, inspected, event_id,
                          "same content already ingested (catalogue row restored from the"
                          " journal)")
    archive_key = _archive_objects(rt, arrival, inspected)
    # Served as it arrived (an EOF kept as .EOF), a product needs no object built; one of
    # one object (a zipped SAFE) is built from the bytes checked above, up to a size.
    # Either way it is packaged, and published, in the statement that catalogues it: no
    # hop to package or publish.
    served = packaging.as_arrived(name, inspected.layout, archive_key, inspected.checksums,
                                  s.eof_distribution)
    if served is None and not arrival.is_folder:
        served = packaging.from_held(rt, name, workdir / inspection.SPOOLED, workdir,
                                     inspected.members)
    # The row and its events in one statement, atomic by itself; a folder's pending
    # record goes in the same transaction, and so does the publication clock's stamp
    # (held until the commit: see publication_clock).
    # Built before the stamp, and again only if the clock moved the date: the clock's lock,
    # which every publication waits for, is held for the statements alone.
    now = datetime.now(UTC)
    row, events = _ingested(rt, arrived, inspected, product_id, archive_key, served, now)
    with conn.transaction() if arrival.is_folder or served else nullcontext():
        if served:
            stamped = publication_clock.stamp(conn, now)
            if stamped != now:
                now = stamped
                row, events = _ingested(rt, arrived, inspected, product_id, archive_key,
                                        served, now)
        inserted = outbox.record_with(conn, *products.insert_ingested_statement(row),
                                      events) is not None
        if arrival.is_folder:
            folders.forget(conn, arrival.bucket, arrival.folder_prefix or "")
    _clear_inbox(rt, conn, arrival, inspected.objects)
    if not inserted:
        return Result(Outcome.DUPLICATE, name.name, "ingested concurrently")
    if served:
        metrics.published(name.product_type, (now - arrived.arrived_at).total_seconds())
    outbox.send_recorded(conn, s.broker_url, events)
    return Result(Outcome.INGESTED, name.name, str(product_id),
                  tuple(e["id"] for e in events))


def _ingested(rt: Runtime, arrived: FileArrived, inspected: Inspected, product_id: uuid.UUID,
              archive_key: str, served: packaging.Packaged | None, now: datetime
              ) -> tuple[products.NewProduct, list[CloudEvent]]:
    """The catalogue row of a product ingested at `now` and the events announcing it
    (packaged and published at `now` too when `served`)."""
    name = inspected.name
    s = rt.settings
    meta = inspected.metadata
    stored_attributes = attributes.to_stored(meta.attributes)
    sums = inspected.checksums
    # The row holds the distribution object's size and checksums, as package sets them.
    served_sums = served.checksums if served else sums
    # Packaged here, it is published here too: nothing is left for publish to wait for.
    published = products.Publication(now, publication.eviction_for(
        s, name.product_type, now)) if served else None
    trace = current_trace_extensions()
    event = envelope.build(
        types.PRODUCT_INGESTED,
        ProductIngested(
            product_id=product_id, logical_name=name.logical_name,
            product_type=name.product_type, platform_serial=name.unit,
            layout=inspected.layout, archive_bucket=s.archive_bucket, archive_key=archive_key,
            fingerprint=inspected.fingerprint, content_length=sums.size,
            checksums=[Checksum(algorithm=MD5, value=sums.md5),
                       Checksum(algorithm=XXH3, value=sums.xxh3)],
            content_start=meta.validity_start, content_end=meta.validity_stop,
            attributes=stored_attributes, arrived_at=arrived.arrived_at, ingested_at=now),
        source=f"{s.event_source}/ingest", subject=name.logical_name,
        event_id=str(uuid.uuid5(_IDS, f"ingested:{product_id}")),
        extensions={**trace, envelope.PACKAGED: "true"} if served else trace,
    )
    events = [event]
    if served and published:
        source = f"{s.event_source}/ingest"
        events.append(packaging.packaged_event(source, product_id, name.product_type,
                                               s.archive_bucket, served, now, published=True))
        events.append(publication.published_event(source, {
            "id": product_id, "name": served.name, "product_type": name.product_type,
            "platform_serial": name.unit, "content_length": served_sums.size,
            "content_start": meta.validity_start, "content_end": meta.validity_stop,
            "origin_date": arrived.arrived_at}, now, published.eviction_date))
    row = products.NewProduct(
        id=product_id, logical_name=name.logical_name, product_type=name.product_type,
        platform_serial=name.unit, fingerprint=inspected.fingerprint,
        layout=inspected.layout, archive_key=archive_key,
        content_length=served_sums.size, checksums=served_sums.as_odata(now),
        content_start=meta.validity_start, content_end=meta.validity_stop,
        origin_date=arrived.arrived_at, attributes=stored_attributes, ingestion_date=now,
        packaged=products.Packaging(name=served.name, distribution_key=served.key,
                                    content_type=served.content_type) if served else None,
        published=published)
    return row, events


def _archive_objects(rt: Runtime, arrival: Arrival, inspected: Inspected) -> str:
    """Copy the arrived object(s) under ingested/<type>/; returns the product's archive key."""
    key, copies = _archive_plan(arrival, inspected)
    # A single object's size is the one its inspection read: the copy needs no HEAD.
    size = inspected.checksums.size if arrival.folder_prefix is None else None
    for source, target in copies:
        storage.copy(rt.s3, arrival.bucket, source, rt.settings.archive_bucket, target,
                     size=size)
    return key


def _archive_plan(arrival: Arrival, inspected: Inspected) -> tuple[str, list[tuple[str, str]]]:
    """(the product's archive key, (inbox key, archive key) of each object to copy)."""
    base = f"ingested/{inspected.name.product_type}/"
    if arrival.folder_prefix is None:
        key = base + inspected.name.name
        return key, [(arrival.key, key)]
    parent = arrival.folder_prefix[: -len(inspected.name.logical_name) - 1]
    return (base + inspected.name.logical_name + "/",
            [(key, base + key[len(parent):]) for key in inspected.objects])


def _duplicate(rt: Runtime, conn: psycopg.Connection, existing: dict, arrival: Arrival,
               arrived: FileArrived, inspected: Inspected, event_id: str, detail: str
               ) -> Result:
    """The same content again: nothing to do, unless the archive lost the product's
    objects (or holds other bytes under their keys), which this arrival then puts back."""
    name = inspected.name
    key, copies = _archive_plan(arrival, inspected)
    s = rt.settings
    copy_whole = _stored(rt, existing["archive_key"], key, copies, inspected)
    restored = []
    if not copy_whole:
        if key != existing["archive_key"]:
            # Catalogued from another container (a SAFE folder, now a zip): this arrival
            # cannot stand for its ingested copy. Kept for an operator, not dropped.
            return _reject_arrival(
                rt, conn, arrival, arrived, RejectReason.CONFLICT,
                f"{name.logical_name} is catalogued as {existing['archive_key']}, whose"
                f" archive copy is missing; it arrived now as {key}: upload it as it was",
                inspected.fingerprint, event_id)
        for source, target in copies:
            storage.copy(rt.s3, arrival.bucket, source, s.archive_bucket, target)
        restored.append(existing["archive_key"])
    served = existing["distribution_key"]
    if served and served != existing["archive_key"] and not _served_whole(rt, existing):
        try:
            packaging.rebuild(rt, existing)
        except packaging.RebuildError as error:
            return _reject_arrival(
                rt, conn, arrival, arrived, RejectReason.CONFLICT,
                f"{name.logical_name}: its distribution object is missing and cannot be"
                f" made again as catalogued: {error}", inspected.fingerprint, event_id)
        restored.append(served)
    _clear_inbox(rt, conn, arrival, inspected.objects)
    if not restored:
        return Result(Outcome.DUPLICATE, name.name, detail)
    with conn.transaction():
        back_online = integrity.mark_online(conn, existing["id"])
    log.warning("%s: the archive had lost %s; restored from this arrival%s", name.name,
                ", ".join(restored), " and back online" if back_online else "")
    return Result(Outcome.RESTORED, name.name, f"archive objects restored: {', '.join(restored)}")


def _stored(rt: Runtime, archive_key: str, key: str, copies: list[tuple[str, str]],
            inspected: Inspected) -> bool:
    """Whether the archive holds the product's ingested copy: as this arrival has it when
    it arrived the same way (`key`), else only that it is there."""
    bucket = rt.settings.archive_bucket
    if archive_key.endswith("/"):
        held = set(storage.list_keys(rt.s3, bucket, archive_key))
        return bool(held) and (key != archive_key or all(t in held for _, t in copies))
    info = storage.head(rt.s3, bucket, archive_key)
    if info is None or key != archive_key:
        return info is not None
    return _same(info, inspected.checksums.size, inspected.checksums.md5)


def _served_whole(rt: Runtime, row: dict) -> bool:
    info = storage.head(rt.s3, rt.settings.archive_bucket, row["distribution_key"])
    md5 = next((c["Value"] for c in row["checksums"] if c["Algorithm"] == MD5), None)
    return info is not None and _same(info, int(row["content_length"]), md5)


def _same(info: dict, size: int, md5: str | None) -> bool:
    """An object is the expected one: its size, and its ETag where that is an MD5 (a
    single-part object's; a multipart ETag says nothing of the content)."""
    etag = info["etag"]
    plain = len(etag) == 32 and "-" not in etag
    return info["size"] == size and not (plain and md5 and etag != md5.lower())


def _reject_arrival(rt: Runtime, conn: psycopg.Connection, arrival: Arrival,
                    arrived: FileArrived, reason: RejectReason, detail: str,
                    fingerprint: str | None, event_id: str, *,
                    attack: Attack | None = None) -> Result:
    """Move what arrived to quarantine, record why, announce it; nothing is dropped."""
    s = rt.settings
    rejection_id = uuid.uuid5(_IDS, f"rejected:{event_id}:{arrival.folder_prefix or arrival.key}")
    if arrival.folder_prefix is not None:
        keys = [key for key, _ in storage.list_objects(rt.s3, arrival.bucket,
                                                       arrival.folder_prefix)]
    else:
        keys = [arrival.key] if storage.head(rt.s3, arrival.bucket, arrival.key) else []
    if not keys:
        return Result(Outcome.GONE, arrival.name, "object no longer in the inbox")
    quarantine_root = f"{rejection_id}/"
    for key in keys:
        storage.copy(rt.s3, arrival.bucket, key, s.quarantine_bucket,
                     _quarantine_key(quarantine_root, key))
    quarantine_key = _quarantine_key(quarantine_root, arrival.folder_prefix or arrival.key)
    now = datetime.now(UTC)
    event = envelope.build(
        types.FILE_REJECTED,
        FileRejected(name=arrival.name, bucket=arrival.bucket,
                     key=arrival.folder_prefix or arrival.key,
                     quarantine_bucket=s.quarantine_bucket, quarantine_key=quarantine_key,
                     reason=reason, detail=detail, fingerprint=fingerprint, rejected_at=now),
        source=f"{s.event_source}/ingest", subject=arrival.name,
        event_id=str(uuid.uuid5(_IDS, f"event:{rejection_id}")),
        extensions=current_trace_extensions(),
    )
    with conn.transaction():
        first = outbox.record(conn, event)
        if first:
            rejections.insert(conn, name=arrival.name, source_bucket=arrival.bucket,
                              source_key=arrival.folder_prefix or arrival.key,
                              quarantine_key=quarantine_key, reason=reason.value,
                              detail=detail, fingerprint=fingerprint, event_id=event_id)
            metrics.rejected(reason.value)
        if arrival.folder_prefix is not None:
            folders.forget(conn, arrival.bucket, arrival.folder_prefix)
    if first:  # once per rejection, however often the arrival is delivered
        threats.quarantined(arrival.name, reason, detail, quarantine_key=quarantine_key,
                            bucket=arrival.bucket, event_id=event_id, attack=attack)
    for key in keys:
        storage.delete(rt.s3, arrival.bucket, key)
    log.warning("rejected %s: %s (%s)", arrival.name, reason.value, detail)
    outbox.send(conn, s.broker_url, [event["id"]])
    return Result(Outcome.REJECTED, arrival.name, f"{reason.value}: {detail}", (event["id"],))


def _quarantine_key(root: str, key: str) -> str:
    """`root + key`, unless that passes S3's 1024-byte limit on keys (an inbox key may
    use all of it): then a digest of the key and as much of its end as fits, so the bytes
    are still kept under the rejection's root."""
    full = root + key
    if len(full.encode()) <= _MAX_KEY_BYTES:
        return full
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    room = _MAX_KEY_BYTES - len(root.encode()) - len(digest) - 1
    tail = key.encode()[-room:].decode("utf-8", "ignore")
    return f"{root}{digest}-{tail}"


def _clear_inbox(rt: Runtime, conn: psycopg.Connection, arrival: Arrival,
                 keys: tuple[str, ...]) -> None:
    for key in keys:
        storage.delete(rt.s3, arrival.bucket, key)
    if arrival.folder_prefix is not None:
        with conn.transaction():
            folders.forget(conn, arrival.bucket, arrival.folder_prefix)


@contextmanager
def _product_lock(rt: Runtime, key: str) -> Iterator[psycopg.Connection]:
    """One ingest at a time per product: a session advisory lock on a pooled connection."""
    with rt.pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


@cache
def _type_table(extra: str | None) -> Mapping[str, str]:
    return naming.load_type_table(extra)
