"""The distribution form of each product, by product-type rules:

- SAFE (folder, zip or tgz as it arrived) -> `X.SAFE.zip`, rebuilt deterministically
  (sorted entries, fixed times and modes), so packaging the same product twice, on replay
  or on another instance, gives the same bytes and the same checksum;
- EOF -> kept as `X.EOF` (default) or zipped as `X.EOF.zip` (AUXIP_EOF_DISTRIBUTION=zip);
- anything else (mission-planning tarballs) -> kept as it arrived.

Archives are built in a temporary file, never in memory, and uploaded from there. A
product of one object up to AUXIP_PACKAGE_IN_INGEST_BYTES is packaged by ingest from the
bytes it has just checked (`from_held`), in the statement that catalogues it: no GET of
its ingested copy, no hop to package.
"""

from __future__ import annotations

import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloudevents.http import CloudEvent

from events import envelope, types
from events.products import Checksum, ProductIngested, ProductPackaged
from shared.adapters import outbox, storage
from shared.adapters.catalogue import products, restore
from shared.adapters.runtime import Runtime
from shared.adapters.telemetry.tracing import current_trace_extensions
from shared.core import archive_safety, naming
from shared.core.checksums import Checksums, Digest

_IDS = uuid.UUID("0b7b1f0e-1d3c-4b9a-9c55-2f4f7e0c8a21")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1024 * 1024

CONTENT_TYPES = {".zip": "application/zip", ".tgz": "application/gzip",
                 ".EOF": "application/octet-stream"}


@dataclass(frozen=True)
class Packaged:
    name: str
    key: str
    content_type: str
    checksums: Checksums


def distribution_name(logical_name: str, fmt: str, eof_distribution: str) -> str:
    if fmt == "SAFE":
        return f"{logical_name}.zip"
    if fmt == "EOF" and eof_distribution == "zip":
        return f"{logical_name}.zip"
    return logical_name


def package(rt: Runtime, ingested: ProductIngested) -> str | None:
    """Package one product; returns the emitted event id, None when already packaged."""
    s = rt.settings
    with rt.pool.connection() as conn:
        row = restore.get_or_restore(conn, ingested.product_id)
    if row is None or row["status"] != "ingested":
        return None
    name = naming.parse(_arrived_name(row), naming.load_type_table(s.extra_product_types))
    packaged = _build(rt, row, name)
    now = datetime.now(UTC)
    event = packaged_event(f"{s.event_source}/package", row["id"], row["product_type"],
                           s.archive_bucket, packaged, now)
    with rt.pool.connection() as conn:
        # The row's change and its event in one statement, atomic by itself.
        journalled = outbox.record_with(conn, *products.mark_packaged_statement(
            row["id"], name=packaged.name, distribution_key=packaged.key,
            content_type=packaged.content_type, content_length=packaged.checksums.size,
            checksums=packaged.checksums.as_odata(now), packaged_at=now), [event])
        done = journalled is not None
        fresh = done and event["id"] in journalled  # type: ignore[operator]
        if fresh:
            outbox.send_recorded(conn, s.broker_url, [event])
        elif done:  # journalled before (a replay): sent unless its row says it was not
            outbox.send(conn, s.broker_url, [event["id"]])
    return event["id"] if done else None


def as_arrived(name: naming.ProductName, layout: str, archive_key: str, sums: Checksums,
               eof_distribution: str) -> Packaged | None:
    """The distribution form of a product served as it arrived (an EOF kept as .EOF): no
    object to build, the ingested checksums stand. None when packaging builds an object."""
    target_name = distribution_name(name.logical_name, name.format, eof_distribution)
    if target_name != name.name or layout != "file":
        return None
    return Packaged(target_name, archive_key, _content_type(target_name), sums)


def packaged_event(source: str, product_id: uuid.UUID, product_type: str,
                   archive_bucket: str, packaged: Packaged, now: datetime, *,
                   published: bool = False) -> CloudEvent:
    """`product.packaged` from `source` (package, or ingest for a product it packaged),
    with the one id a product's packaging has wherever it is made; `published` when the
    product is published in the same transaction (publish's Trigger then leaves it out)."""
    trace = current_trace_extensions()
    return envelope.build(
        types.PRODUCT_PACKAGED,
        ProductPackaged(
            product_id=product_id, name=packaged.name, product_type=product_type,
            archive_bucket=archive_bucket, distribution_key=packaged.key,
            content_type=packaged.content_type, content_length=packaged.checksums.size,
            checksums=[Checksum(algorithm=c["Algorithm"], value=c["Value"])
                       for c in packaged.checksums.as_odata(now)],
            packaged_at=now),
        source=source, subject=packaged.name,
        event_id=str(uuid.uuid5(_IDS, f"packaged:{product_id}")),
        extensions={**trace, envelope.PUBLISHED: "true"} if published else trace,
    )


def _arrived_name(row: dict) -> str:
    """The name the product arrived under, which says its container."""
    key = row["archive_key"].rstrip("/")
    return key.rsplit("/", 1)[-1]


class RebuildError(RuntimeError):
    """A product's distribution object cannot be made again as catalogued."""


def rebuild(rt: Runtime, row: dict) -> Packaged:
    """Make a packaged product's distribution object again from its ingested copy (after
    the archive lost it). Packaging is deterministic, so the bytes are those catalogued;
    they are checked before they replace anything, and never uploaded when they differ
    (a changed AUXIP_EOF_DISTRIBUTION, a damaged ingested copy)."""
    if not row.get("distribution_key") or row["distribution_key"] == row["archive_key"]:
        raise RebuildError(f"{row['logical_name']} is served as it arrived: nothing to rebuild")
    types_table = naming.load_type_table(rt.settings.extra_product_types)
    name = naming.parse(_arrived_name(row), types_table)
    wanted = {c["Algorithm"]: c["Value"] for c in row["checksums"]}
    return _build(rt, row, name, expected=(row["distribution_key"], wanted.get("MD5")))


def _build(rt: Runtime, row: dict, name: naming.ProductName,
           expected: tuple[str, str | None] | None = None) -> Packaged:
    """Build and upload the distribution object; with `expected` (key, MD5) only when the
    result is that object, byte for byte."""
    s = rt.settings
    existing = {c["Algorithm"]: c["Value"] for c in row["checksums"]}
    served = as_arrived(name, row["layout"], row["archive_key"],
                        Checksums(md5=existing.get("MD5", ""), xxh3=existing.get("XXH3-128", ""),
                                  size=row["content_length"]), s.eof_distribution)
    if served is not None:
        if expected is not None and (served.key, served.checksums.md5) != expected:
            raise RebuildError(f"{row['logical_name']} is now served as it arrived"
                               f" ({row['archive_key']}), the catalogue has {expected[0]}")
        return served
    with tempfile.TemporaryDirectory(prefix="auxip-package-") as tmp:
        workdir = Path(tmp)
        return _make(rt, row["product_type"], name, _entries(rt, row, name, workdir), workdir,
                     expected=expected)


def from_held(rt: Runtime, name: naming.ProductName, held: Path, workdir: Path,
              files: Iterable[archive_safety.Member] | None) -> Packaged | None:
    """Package a product of one object that `as_arrived` does not serve as it arrived, from
    its bytes the caller holds at `held` (ingest's checked copy), as `package` would from
    its ingested copy, byte for byte. None when the object or its content (what is to be
    compressed: an archive may hold 200 times its size) is above
    AUXIP_PACKAGE_IN_INGEST_BYTES: package builds it then, on a hop of its own. Built and
    uploaded from `workdir`. `files`: an archive's file members as the caller checked them
    (None: not an archive)."""
    limit = rt.settings.package_in_ingest_bytes
    if held.stat().st_size > limit:
        return None
    members = None if files is None else sorted(files, key=lambda m: m.name)
    if members is not None and sum(m.size for m in members) > limit:
        return None
    return _make(rt, name.product_type, name, _held_entries(held, name, members), workdir)


def _make(rt: Runtime, product_type: str, name: naming.ProductName,
          entries: Iterable[tuple[str, Iterable[bytes]]], workdir: Path,
          expected: tuple[str, str | None] | None = None) -> Packaged:
    """Write the distribution object from `entries` in `workdir`, and upload it; with
    `expected` (key, MD5) only when the result is that object, byte for byte."""
    s = rt.settings
    target_name = distribution_name(name.logical_name, name.format, s.eof_distribution)
    key = f"products/{product_type}/{target_name}"
    content_type = _content_type(target_name)
    out = workdir / "out"
    if target_name.endswith(".zip"):
        write_deterministic_zip(out, entries)
    else:
        with out.open("wb") as stream:
            for _, chunks in entries:
                for chunk in chunks:
                    stream.write(chunk)
    sums = _checksums_of(out)
    if expected is not None and (key, sums.md5) != expected:
        raise RebuildError(f"{name.logical_name}: rebuilt as {key} (MD5 {sums.md5}),"
                           f" the catalogue has {expected[0]} (MD5 {expected[1]})")
    storage.put_file(rt.s3, s.archive_bucket, key, out, content_type=content_type)
    return Packaged(target_name, key, content_type, sums)


def _entries(rt: Runtime, row: dict, name: naming.ProductName,
             workdir: Path) -> Iterator[tuple[str, Iterable[bytes]]]:
    """(entry name, chunks) of the product's content, in sorted entry order."""
    s = rt.settings
    if row["layout"] == "safe-folder":
        prefix = row["archive_key"]
        parent = prefix[: -len(name.logical_name) - 1]
        for key, _ in sorted(storage.list_objects(rt.s3, s.archive_bucket, prefix)):
            yield key[len(parent):], storage.iter_chunks(rt.s3, s.archive_bucket, key)
        return
    if not name.container:
        yield name.logical_name, storage.iter_chunks(rt.s3, s.archive_bucket, row["archive_key"])
        return
    archive = workdir / "arrived"
    with archive.open("wb") as stream:
        for chunk in storage.iter_chunks(rt.s3, s.archive_bucket, row["archive_key"]):
            stream.write(chunk)
    yield from _held_entries(archive, name)


def _held_entries(path: Path, name: naming.ProductName,
                  members: list[archive_safety.Member] | None = None
                  ) -> Iterator[tuple[str, Iterable[bytes]]]:
    """(entry name, chunks) of a product of one object held in a local file; `members`
    its file members when already listed (`_members`)."""
    if not name.container:
        yield name.logical_name, _file_chunks(path)
        return
    limits = archive_safety.ArchiveLimits()
    for member in members if members is not None else _members(path, name) or []:
        yield member.name, archive_safety.iter_member_chunks(path, name.container,
                                                             member.name, limits)


def _members(path: Path, name: naming.ProductName) -> list[archive_safety.Member] | None:
    """The file members of an archive, sorted by name; None for a product not archived."""
    if not name.container:
        return None
    members = archive_safety.inspect_archive(path, name.container,
                                             archive_safety.ArchiveLimits())
    return sorted((m for m in members if not m.is_dir), key=lambda m: m.name)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def write_deterministic_zip(path: Path, entries: Iterable[tuple[str, Iterable[bytes]]]) -> None:
    """Same entries in -> same bytes out: no timestamps, owners or order from the source."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6,
                         allowZip64=True) as archive:
        for entry_name, chunks in sorted(entries, key=lambda e: e[0]):
            info = zipfile.ZipInfo(entry_name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            with archive.open(info, "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)


def _content_type(file_name: str) -> str:
    return CONTENT_TYPES.get(Path(file_name).suffix, "application/octet-stream")


def _checksums_of(path: Path) -> Checksums:
    digest = Digest()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.result()
