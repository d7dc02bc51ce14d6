"""Safety inspection of zip and tar archives, from their directory, before anything is used.

Nothing is extracted to disk. `inspect_archive` reads the member list and refuses what an
extractor, a later packaging step or a download client could be hurt by: names that escape
the target folder, links, devices, duplicate or clashing names, and sizes or compression
ratios that would exhaust memory or disk. Declared sizes can lie, so `iter_member_chunks` /
`iter_members` count the bytes actually decompressed and stop a member that yields more than
its header declares or more than the limits allow.

Two reasons, matching `events.files.RejectReason`:
- `archive_unsafe`: a readable archive with something dangerous inside;
- `archive_corrupt`: the bytes are not a valid (complete, undamaged) archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from shared.core.archive_safety.limits import (
    ARCHIVE_CORRUPT,
    ARCHIVE_UNSAFE,
    DEFAULT_LIMITS,
    TAR_KINDS,
    ZIP_KINDS,
    ArchiveLimits,
    GiB,
    KiB,
    Member,
    MiB,
    UnsafeArchive,
    normalise,
)
from shared.core.archive_safety.tar_format import TarWalk, inspect_tar, tar_chunks
from shared.core.archive_safety.zip_format import inspect_zip, open_zip, zip_chunks, zip_member

__all__ = [
    "ARCHIVE_CORRUPT", "ARCHIVE_UNSAFE", "DEFAULT_LIMITS", "TAR_KINDS", "ZIP_KINDS", "GiB",
    "KiB", "MiB", "ArchiveLimits", "Member", "UnsafeArchive", "inspect_archive", "inspect_tar",
    "inspect_zip", "iter_member_chunks", "iter_members", "safe_root",
]




def _kind(kind: str) -> str:
    if kind in ZIP_KINDS:
        return "zip"
    if kind in TAR_KINDS:
        return "tar"
    raise ValueError(f"unknown archive kind {kind!r}; expected one of zip, tar, tgz, tar.gz")


def inspect_archive(path: Path, kind: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    """All members (folders included), or UnsafeArchive. `kind`: 'zip', 'tgz', 'tar' or
    'tar.gz' (for tar, gzip / bzip2 / xz compression is recognised from the bytes)."""
    if _kind(kind) == "zip":
        return inspect_zip(path, limits)
    return inspect_tar(path, limits)


def iter_members(
    archive_path: Path,
    kind: str,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    chunk_size: int = 1 * MiB,
) -> Iterator[tuple[Member, Iterator[bytes]]]:
    """Every file member with its content, in one pass (a .tgz can only be read in order).
    Call `inspect_archive` first. Consume (or drop) each member's chunks before advancing.
    A member is only proven whole when its iterator ends without raising."""
    path = Path(archive_path)
    if _kind(kind) == "zip":
        with open_zip(path) as zf:
            for info in zf.infolist():
                member = zip_member(info, limits)
                if member.name and not member.is_dir:
                    yield member, zip_chunks(zf, info, limits, chunk_size)
        return
    with TarWalk(path, limits) as walk:
        for entry in walk.entries():
            if not entry.member.is_dir:
                yield entry.member, tar_chunks(walk, entry, chunk_size)


def iter_member_chunks(
    archive_path: Path,
    kind: str,
    member_name: str,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    chunk_size: int = 1 * MiB,
) -> Iterator[bytes]:
    """The content of one file member (by its normalised `Member.name`), guarded: raises
    UnsafeArchive if it yields more bytes than declared or than the limit, and
    `archive_corrupt` if it yields fewer or fails its CRC. KeyError if there is no such
    file member."""
    path = Path(archive_path)
    if _kind(kind) == "zip":
        with open_zip(path) as zf:
            for info in zf.infolist():
                raw = info.orig_filename
                if normalise(raw) == member_name and not raw.endswith("/"):
                    zip_member(info, limits)
                    yield from zip_chunks(zf, info, limits, chunk_size)
                    return
    else:
        with TarWalk(path, limits) as walk:
            for entry in walk.entries():
                if entry.member.name == member_name and not entry.member.is_dir:
                    yield from tar_chunks(walk, entry, chunk_size)
                    return
    raise KeyError(f"no file member {member_name!r} in {path.name}")


def safe_root(members: Iterable[Member]) -> str | None:
    """The single top-level folder holding every member (a zipped SAFE is `X.SAFE/...`),
    or None if members sit at the top level or under several folders."""
    root: str | None = None
    for m in members:
        top, sep, _ = m.name.partition("/")
        if not sep and not m.is_dir:
            return None  # a file at the top level
        if root is None:
            root = top
        elif top != root:
            return None
    return root
