"""Checking what arrived: one pass over the bytes (checksums, virus scan, spool to a local
file), then format checks: archive safety, SAFE completeness, metadata.

Every refusal raises `Refused(reason, detail)`; a scanner that cannot answer raises
`ScanUnavailable` so the event is retried, never accepted or refused by default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from events.files import RejectReason
from shared.adapters import storage
from shared.adapters.virus_scan import ClamdScanner
from shared.core import archive_safety, metadata
from shared.core.arrival import Arrival
from shared.core.attacks import Attack
from shared.core.checksums import Checksums, Digest, digest_through
from shared.core.metadata import MetadataError, ProductMetadata
from shared.core.naming import ProductName

MANIFEST = "manifest.safe"
SPOOLED = "arrived"  # a product of one object, as read, in the caller's work directory
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


class Refused(Exception):
    def __init__(self, reason: RejectReason, detail: str, attack: Attack | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attack = attack  # what the file was built to do (shared.core.attacks), if known


class Incomplete(Exception):
    """A SAFE folder whose objects have not all arrived yet."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"waiting for {len(missing)} object(s): {', '.join(missing[:5])}")
        self.missing = missing


class Gone(Exception):
    """The object is no longer in the inbox: handled by an earlier delivery."""


@dataclass(frozen=True)
class Inspected:
    name: ProductName
    layout: str  # "file" | "safe-folder" | "safe-archive"
    fingerprint: str
    checksums: Checksums  # of the bytes as they arrived (the file or the archive)
    metadata: ProductMetadata
    objects: tuple[str, ...]  # inbox keys that make up the product
    # An archived product's file members as checked here, in the archive's order (None:
    # not an archive): packaging them needs no second listing.
    members: tuple[archive_safety.Member, ...] | None = None


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    archive: archive_safety.ArchiveLimits


def inspect_file(s3: Any, scanner: ClamdScanner, arrival: Arrival, name: ProductName,
                 limits: Limits, workdir: Path) -> Inspected:
    """A product that is one object: EOF, zipped EOF, SAFE archive, MPL tgz."""
    spooled = workdir / SPOOLED
    digest = _fetch_checked(s3, scanner, arrival.bucket, arrival.key, limits, spooled)
    checksums = digest.result()
    objects = (arrival.key,)
    if name.format == "SAFE":
        files = _files(spooled, name.container, limits)
        fingerprint, meta = _safe_archive(spooled, name, files, limits)
        return Inspected(name, "safe-archive", fingerprint, checksums, meta, objects, files)
    if name.format == "EOF" and name.container:
        files = _files(spooled, name.container, limits)
        fingerprint, meta = _zipped_eof(spooled, name, files, limits, workdir)
        return Inspected(name, "file", fingerprint, checksums, meta, objects, files)
    if name.format == "EOF":
        with spooled.open("rb") as stream:
            meta = _metadata(lambda: metadata.from_eof(stream, name))
        return Inspected(name, "file", checksums.md5, checksums, meta, objects)
    # A mission-planning tarball: its safety is checked, its metadata is its name.
    _members(spooled, "tgz", limits)
    meta = metadata.from_name(name)
    return Inspected(name, "file", checksums.md5, checksums, meta, objects)


def inspect_folder(s3: Any, scanner: ClamdScanner, arrival: Arrival, name: ProductName,
                   limits: Limits, workdir: Path) -> Inspected:
    """A SAFE product uploaded as a folder of objects; raises Incomplete until it is whole."""
    prefix = arrival.folder_prefix or ""
    present = dict(storage.list_objects(s3, arrival.bucket, prefix))
    if not present:
        raise Gone(prefix)
    manifest_key = prefix + MANIFEST
    if manifest_key not in present:
        raise Incomplete([MANIFEST])
    if present[manifest_key] > MAX_MANIFEST_BYTES:
        raise Refused(RejectReason.TOO_LARGE, f"{MANIFEST} is {present[manifest_key]} bytes")
    manifest = workdir / MANIFEST
    manifest_digest = _fetch_checked(s3, scanner, arrival.bucket, manifest_key, limits, manifest)
    xml = manifest.read_bytes()
    meta = _metadata(lambda: metadata.from_manifest(xml, name))
    missing = [href for href in _required(meta) if prefix + href not in present]
    if missing:
        raise Incomplete(missing)
    for obj in meta.data_objects:
        key = prefix + obj.href
        if obj.size is not None and present[key] != obj.size:
            raise Refused(RejectReason.CHECKSUM_MISMATCH,
                          f"{obj.href} is {present[key]} bytes, the manifest says {obj.size}")
    # Everything under the folder is scanned; listed objects are also checked against
    # their manifest MD5. Unlisted extras travel with the product.
    expected = {prefix + obj.href: obj for obj in meta.data_objects}
    for key in sorted(present):
        if key == manifest_key:
            continue
        digest = _fetch_checked(s3, scanner, arrival.bucket, key, limits, None)
        obj = expected.get(key)
        if obj is not None and obj.md5 and digest.result().md5 != obj.md5.lower():
            raise Refused(RejectReason.CHECKSUM_MISMATCH,
                          f"{obj.href} has MD5 {digest.result().md5}, the manifest says {obj.md5}")
    total = sum(present.values())
    checksums = Checksums(md5=manifest_digest.result().md5, xxh3=manifest_digest.result().xxh3,
                          size=total)
    return Inspected(name, "safe-folder", checksums.md5, checksums, meta,
                     tuple(sorted(present)))


def _required(meta: ProductMetadata) -> list[str]:
    """Every file the manifest names: its data objects and the files it references."""
    return [obj.href for obj in meta.data_objects] + list(meta.references)


def _fetch_checked(s3: Any, scanner: ClamdScanner, bucket: str, key: str, limits: Limits,
                   spool: Path | None) -> Digest:
    """Read the object once: size limits, checksums, virus scan, and a local copy. The
    GET's answer says the size before any byte is read: no HEAD first."""
    opened = storage.open_object(s3, bucket, key)
    if opened is None:
        raise Gone(key)
    size = opened.size
    if size == 0 or size > limits.max_file_bytes:
        opened.close()
        if size == 0:
            raise Refused(RejectReason.EMPTY, f"{key} is empty")
        raise Refused(RejectReason.TOO_LARGE,
                      f"{key} is {size} bytes, the limit is {limits.max_file_bytes}")
    digest = Digest()
    sink = spool.open("wb") if spool is not None else None
    try:
        result = scanner.scan_stream(digest_through(_written(opened.chunks, sink), digest))
    finally:
        opened.close()
        if sink is not None:
            sink.close()
    if not result.clean:
        raise Refused(RejectReason.VIRUS_FOUND, f"{key}: {result.signature}")
    if digest.size != size:
        raise Refused(RejectReason.CHECKSUM_MISMATCH,
                      f"{key}: read {digest.size} bytes, the store announced {size}")
    return digest


def _written(chunks: Iterable[bytes], sink: BinaryIO | None) -> Iterator[bytes]:
    for chunk in chunks:
        if sink is not None:
            sink.write(chunk)
        yield chunk


def _safe_archive(path: Path, name: ProductName, files: tuple[archive_safety.Member, ...],
                  limits: Limits) -> tuple[str, ProductMetadata]:
    kind = name.container
    members = {m.name: m for m in files}
    root = archive_safety.safe_root(list(members.values()))
    if root != name.logical_name:
        raise Refused(RejectReason.CONTENT_MISMATCH,
                      f"the archive holds {root or 'no single folder'!s}, "
                      f"the name says {name.logical_name}")
    manifest_name = f"{root}/{MANIFEST}"
    if manifest_name not in members:
        raise Refused(RejectReason.SAFE_INCOMPLETE, f"no {MANIFEST} in the archive")
    xml = b"".join(_member_chunks(path, kind, manifest_name, limits))
    meta = _metadata(lambda: metadata.from_manifest(xml, name))
    missing = [href for href in _required(meta) if f"{root}/{href}" not in members]
    if missing:
        raise Refused(RejectReason.SAFE_INCOMPLETE,
                      f"{len(missing)} file(s) of the manifest missing: "
                      + ", ".join(missing[:10]))
    for obj in meta.data_objects:
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        for chunk in _member_chunks(path, kind, f"{root}/{obj.href}", limits):
            md5.update(chunk)
            size += len(chunk)
        if (obj.md5 and md5.hexdigest() != obj.md5.lower()) or (
                obj.size is not None and size != obj.size):
            raise Refused(RejectReason.CHECKSUM_MISMATCH,
                          f"{obj.href}: {size} bytes, MD5 {md5.hexdigest()}; the manifest says "
                          f"{obj.size} bytes, MD5 {obj.md5}")
    return hashlib.md5(xml, usedforsecurity=False).hexdigest(), meta


def _zipped_eof(path: Path, name: ProductName, members: tuple[archive_safety.Member, ...],
                limits: Limits, workdir: Path) -> tuple[str, ProductMetadata]:
    if [m.name for m in members] != [name.logical_name]:
        raise Refused(RejectReason.CONTENT_MISMATCH,
                      f"expected exactly {name.logical_name} in the archive, found "
                      + ", ".join(m.name for m in members[:10]))
    inner = workdir / name.logical_name
    md5 = hashlib.md5(usedforsecurity=False)
    with inner.open("wb") as out:
        for chunk in _member_chunks(path, name.container, name.logical_name, limits):
            md5.update(chunk)
            out.write(chunk)
    with inner.open("rb") as stream:
        meta = _metadata(lambda: metadata.from_eof(stream, name))
    return md5.hexdigest(), meta


def _files(path: Path, kind: str, limits: Limits) -> tuple[archive_safety.Member, ...]:
    """The file members of an archive (folders left out), checked safe."""
    return tuple(m for m in _members(path, kind, limits) if not m.is_dir)


def _members(path: Path, kind: str, limits: Limits) -> list[archive_safety.Member]:
    try:
        return archive_safety.inspect_archive(path, kind, limits.archive)
    except archive_safety.UnsafeArchive as error:
        raise Refused(RejectReason(error.reason), error.detail, error.attack) from error


def _member_chunks(path: Path, kind: str, member: str, limits: Limits) -> Iterator[bytes]:
    try:
        yield from archive_safety.iter_member_chunks(path, kind, member, limits.archive)
    except archive_safety.UnsafeArchive as error:
        raise Refused(RejectReason(error.reason), error.detail, error.attack) from error


def _metadata(extract) -> ProductMetadata:  # type: ignore[no-untyped-def]
    try:
        return extract()
    except MetadataError as error:
        raise Refused(RejectReason(error.reason), error.detail, error.attack) from error
