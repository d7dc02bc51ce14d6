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

import bz2
import copy
import gzip
import lzma
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ARCHIVE_UNSAFE = "archive_unsafe"
ARCHIVE_CORRUPT = "archive_corrupt"

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

ZIP_KINDS = frozenset({"zip"})
TAR_KINDS = frozenset({"tar", "tgz", "tar.gz"})


class UnsafeArchive(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _unsafe(detail: str) -> UnsafeArchive:
    return UnsafeArchive(ARCHIVE_UNSAFE, detail)


def _corrupt(detail: str) -> UnsafeArchive:
    return UnsafeArchive(ARCHIVE_CORRUPT, detail)


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_member_bytes: int = 4 * GiB
    max_total_bytes: int = 8 * GiB
    # Uncompressed / compressed. Real S1 aux XML compresses 3-45x; zeros deflate ~1000x.
    max_ratio: float = 200.0
    # Below this many uncompressed bytes a ratio is not judged: a small member cannot
    # exhaust anything, and tiny repetitive files legitimately compress very well.
    ratio_floor_bytes: int = 1 * MiB


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Member:
    """One archive entry. `name` is normalised: '/'-separated, no '.' or empty parts, no
    trailing '/' for folders. `compressed_size` is None inside a tar compressed as a whole
    (.tgz), where members have no compressed size of their own."""

    name: str
    size: int
    compressed_size: int | None
    is_dir: bool


# --- names ------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")


def _normalise(raw: str) -> str:
    """The member's name as a relative '/' path, or UnsafeArchive if it could escape."""
    if raw == "":
        raise _unsafe("a member has an empty name")
    if any(ord(c) < 0x20 or c == "\x7f" for c in raw):
        raise _unsafe(f"member {raw!r}: control character in name")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise _unsafe(f"member {raw!r}: name is not valid UTF-8") from None
    # Backslash is a separator for Windows extractors, so '..\\x' is traversal there.
    if "\\" in raw:
        raise _unsafe(f"member {raw!r}: backslash in name (a Windows path separator)")
    if raw.startswith("/") or _DRIVE.match(raw):
        raise _unsafe(f"member {raw!r}: absolute path")
    parts = raw.split("/")
    if ".." in parts:
        raise _unsafe(f"member {raw!r}: path traversal ('..' component)")
    return "/".join(p for p in parts if p not in ("", "."))


class _NameBook:
    """Refuses duplicates, and a name used both as a file and as a folder (after
    normalisation 'a/b' and './a//b' are the same file for any extractor)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.files: set[str] = set()
        self.parents: dict[str, str] = {}

    def add(self, name: str, raw: str, is_dir: bool) -> None:
        if name in self.seen:
            raise _unsafe(f"member {raw!r}: duplicate of {self.seen[name]!r}")
        if not is_dir and name in self.parents:
            raise _unsafe(
                f"member {raw!r}: is a file and also the folder of {self.parents[name]!r}"
            )
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.files:
                raise _unsafe(f"member {raw!r}: its folder {parent!r} is a file")
            self.parents.setdefault(parent, raw)
        self.seen[name] = raw
        if not is_dir:
            self.files.add(name)


def _check_sizes(raw: str, size: int, total: int, limits: ArchiveLimits) -> None:
    if size > limits.max_member_bytes:
        raise _unsafe(
            f"member {raw!r}: {size} bytes uncompressed, over the limit of "
            f"{limits.max_member_bytes}"
        )
    if total > limits.max_total_bytes:
        raise _unsafe(
            f"members up to {raw!r} total {total} bytes uncompressed, over the limit of "
            f"{limits.max_total_bytes}"
        )


def _ratio_over(size: int, compressed: int, limits: ArchiveLimits) -> bool:
    return size > limits.ratio_floor_bytes and size > limits.max_ratio * max(compressed, 1)


def _check_count(count: int, limits: ArchiveLimits) -> None:
    if count > limits.max_members:
        raise _unsafe(f"more than {limits.max_members} members")


# --- zip --------------------------------------------------------------------------------

_ZIP_ENCRYPTED = 0x1
_ZIP_STRONG_ENCRYPTION = 0x40
_ZIP_UTF8 = 0x800
_ZIP_AES = 99
# Only these: zipfile bounds the output of each deflate read, but decompresses a whole
# bzip2/lzma block at once, so one read of those could expand to gigabytes in memory.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_WIN_REPARSE_POINT = 0x400  # MS-DOS attribute: a Windows symlink or junction
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")
_ZIP_BAD_BYTES = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    struct.error,
    ValueError,
    NotImplementedError,
)


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        return zipfile.ZipFile(path)
    except _ZIP_BAD_BYTES as e:
        raise _corrupt(f"not a readable zip archive: {e}") from None


def _zip_member(info: zipfile.ZipInfo, limits: ArchiveLimits) -> Member:
    """Per-entry checks that need only the central directory entry."""
    raw = info.orig_filename  # before zipfile cuts the name at a NUL byte
    name = _normalise(raw)
    is_dir = raw.endswith("/")
    if info.flag_bits & (_ZIP_ENCRYPTED | _ZIP_STRONG_ENCRYPTION) or info.compress_type == _ZIP_AES:
        raise _unsafe(f"member {raw!r}: encrypted (its content cannot be checked)")
    if info.compress_type not in _ZIP_METHODS:
        raise _unsafe(
            f"member {raw!r}: compression method {info.compress_type} not accepted "
            "(only stored and deflate)"
        )
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise _unsafe(f"member {raw!r}: symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _unsafe(f"member {raw!r}: device, fifo or socket (mode {kind:#o})")
    if info.external_attr & _WIN_REPARSE_POINT:
        raise _unsafe(f"member {raw!r}: Windows reparse point (symbolic link or junction)")
    if not name:
        if not is_dir:
            raise _unsafe(f"member {raw!r}: names no file")
    if is_dir and info.file_size:
        raise _unsafe(f"member {raw!r}: a folder entry carrying {info.file_size} bytes")
    if _ratio_over(info.file_size, info.compress_size, limits):
        raise _unsafe(
            f"member {raw!r}: compression ratio {info.file_size / max(info.compress_size, 1):.0f}"
            f" over the limit of {limits.max_ratio:g} ({info.file_size} bytes from "
            f"{info.compress_size})"
        )
    return Member(name, info.file_size, info.compress_size, is_dir)


def _check_zip_layout(zf: zipfile.ZipFile, raw_file: BinaryIO) -> None:
    """Each entry must own its own bytes: one local header per member, named as in the
    directory, with no two members sharing data (overlapping entries are how the
    highest-ratio zip bombs are built), and nothing hidden before the first member."""
    infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
    end_of_data: int = zf.start_dir  # type: ignore[attr-defined]  # where the directory starts
    prev_end, prev_name = 0, None
    for info in infos:
        raw = info.orig_filename
        if info.header_offset < 0 or info.header_offset >= end_of_data:
            raise _corrupt(f"member {raw!r}: header offset {info.header_offset} outside the data")
        if info.header_offset < prev_end:
            raise _unsafe(f"member {raw!r}: overlaps the data of member {prev_name!r}")
        if prev_name is None and info.header_offset > 0:
            raise _unsafe(
                f"{info.header_offset} bytes before the first member {raw!r} "
                "(a self-extracting or polyglot file)"
            )
        raw_file.seek(info.header_offset)
        header = raw_file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise _corrupt(f"member {raw!r}: local header cut off")
        sig, _v, flags, _m, _t, _d, _crc, _cs, _us, name_len, extra_len = _LOCAL_HEADER.unpack(
            header
        )
        if sig != b"PK\x03\x04":
            raise _corrupt(f"member {raw!r}: no local header at offset {info.header_offset}")
        local_name = raw_file.read(name_len).decode(
            "utf-8" if flags & _ZIP_UTF8 else "cp437", errors="replace"
        )
        if local_name != raw:
            raise _unsafe(
                f"member {raw!r}: its local header names it {local_name!r} "
                "(extractors disagree on which name is real)"
            )
        if flags & (_ZIP_ENCRYPTED | _ZIP_STRONG_ENCRYPTION):
            raise _unsafe(f"member {raw!r}: encrypted (its content cannot be checked)")
        data_end = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        data_end += info.compress_size
        if data_end > end_of_data:
            raise _corrupt(f"member {raw!r}: data runs past the central directory")
        prev_end, prev_name = data_end, raw


def inspect_zip(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    path = Path(path)
    archive_bytes = path.stat().st_size
    with _open_zip(path) as zf:
        infos = zf.infolist()
        _check_count(len(infos), limits)
        book = _NameBook()
        members: list[Member] = []
        total = 0
        for info in infos:
            member = _zip_member(info, limits)
            total += member.size
            _check_sizes(info.orig_filename, member.size, total, limits)
            if member.name:
                book.add(member.name, info.orig_filename, member.is_dir)
                members.append(member)
        with open(path, "rb") as raw_file:
            _check_zip_layout(zf, raw_file)
    if _ratio_over(total, archive_bytes, limits):
        raise _unsafe(
            f"archive compression ratio {total / max(archive_bytes, 1):.0f} over the limit of "
            f"{limits.max_ratio:g} ({total} bytes from {archive_bytes})"
        )
    return members


def _zip_chunks(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, chunk_size: int
) -> Iterator[bytes]:
    raw = info.orig_filename
    declared = info.file_size
    if declared > limits.max_member_bytes:
        raise _unsafe(f"member {raw!r}: {declared} bytes, over the limit")
    # zipfile silently stops at the declared size (then fails the CRC): ask it for one byte
    # more, and check the CRC here, so a header that under-declares is named for what it is.
    probe = copy.copy(info)
    probe.file_size = declared + 1
    del probe.CRC
    produced = crc = 0
    try:
        with zf.open(probe) as f:
            while chunk := f.read(chunk_size):
                produced += len(chunk)
                if produced > declared:
                    raise _unsafe(
                        f"member {raw!r}: yields more than the {declared} bytes its header declares"
                    )
                crc = zlib.crc32(chunk, crc)
                yield chunk
    except _ZIP_BAD_BYTES as e:
        raise _corrupt(f"member {raw!r}: {e}") from None
    if produced < declared:
        raise _corrupt(f"member {raw!r}: ended after {produced} of {declared} declared bytes")
    if crc != info.CRC:
        raise _corrupt(f"member {raw!r}: CRC-32 mismatch (damaged data)")


# --- tar --------------------------------------------------------------------------------

_TRAILER_LIMIT = 1 * MiB  # zero padding tolerated after the end-of-archive marker
_TAIL_KEEP = 64 * KiB  # > tarfile's read-ahead (one 10 KiB record + one block)
_TAR_BAD_BYTES = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_TAR_HEADER_LIMIT = 1 * MiB  # pax / GNU long-name headers are read into memory whole
_TAR_LONG_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _SafeTarInfo(tarfile.TarInfo):
    def _proc_member(self, tarfile_: tarfile.TarFile):  # type: ignore[override]
        # tarfile reads a pax or long-name header into memory in one piece, whatever size it
        # declares: refuse big ones before that happens.
        if self.type in _TAR_LONG_HEADERS and self.size > _TAR_HEADER_LIMIT:
            raise _unsafe(f"extended header of {self.size} bytes at offset {self.offset}")
        return super()._proc_member(tarfile_)


class _Counted:
    """Counts the compressed bytes handed to the decompressor."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True


class _Guarded:
    """The decompressed tar stream: stops once it outgrows its compressed source by more
    than the ratio allows (headers can lie; this cannot), and keeps its last bytes so the
    end-of-archive marker can be checked after tarfile has stopped."""

    def __init__(self, inner: BinaryIO, source: _Counted | None, limits: ArchiveLimits):
        self.inner = inner
        self.source = source
        self.limits = limits
        self.count = 0
        self.tail = bytearray()
        self.tail_start = 0
        self.current = "(start of archive)"

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        if self.source is not None and _ratio_over(self.count, self.source.count, self.limits):
            raise _unsafe(
                f"decompresses to more than {self.limits.max_ratio:g} times its compressed "
                f"size ({self.count} bytes from {self.source.count}), at member "
                f"{self.current!r}"
            )
        self.tail += data
        if len(self.tail) > 2 * _TAIL_KEEP:
            cut = len(self.tail) - _TAIL_KEEP
            del self.tail[:cut]
            self.tail_start += cut
        return data

    def readable(self) -> bool:
        return True

    def kept(self, start: int) -> bytes:
        return bytes(self.tail[start - self.tail_start :])


def _decompressor(raw: BinaryIO) -> tuple[BinaryIO, _Counted | None]:
    magic = raw.read(6)
    raw.seek(0)
    counted = _Counted(raw)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=counted, mode="rb"), counted  # type: ignore[arg-type]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(counted, mode="rb"), counted  # type: ignore[arg-type]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(counted, mode="rb"), counted  # type: ignore[arg-type]
    return raw, None


@dataclass
class _TarEntry:
    member: Member
    info: tarfile.TarInfo


class _TarWalk:
    """One streaming pass over a (possibly compressed) tar, validating each header."""

    def __init__(self, path: Path, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        self.raw = open(path, "rb")
        try:
            stream, self.source = _decompressor(self.raw)
            self.guard = _Guarded(stream, self.source, limits)
            self.tf = tarfile.open(fileobj=self.guard, mode="r|", tarinfo=_SafeTarInfo)  # type: ignore[call-overload]
        except _TAR_BAD_BYTES as e:
            self.raw.close()
            raise _corrupt(f"not a readable tar archive: {e}") from None
        except BaseException:
            self.raw.close()
            raise

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _TarWalk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entries(self) -> Iterator[_TarEntry]:
        book = _NameBook()
        total = count = 0
        it = iter(self.tf)
        while True:
            try:
                info = next(it)
            except StopIteration:
                return
            except _TAR_BAD_BYTES as e:
                raise _corrupt(f"after member {self.guard.current!r}: {e}") from None
            count += 1
            _check_count(count, self.limits)
            member = self._member(info)
            self.guard.current = info.name
            total += member.size
            _check_sizes(info.name, member.size, total, self.limits)
            if member.name:
                book.add(member.name, info.name, member.is_dir)
                yield _TarEntry(member, info)

    def _member(self, info: tarfile.TarInfo) -> Member:
        raw = info.name
        name = _normalise(raw)
        if info.issym():
            raise _unsafe(f"member {raw!r}: symbolic link to {info.linkname!r}")
        if info.islnk():
            raise _unsafe(f"member {raw!r}: hard link to {info.linkname!r}")
        if info.ischr() or info.isblk() or info.isfifo():
            raise _unsafe(f"member {raw!r}: device or fifo")
        if info.issparse():
            raise _unsafe(f"member {raw!r}: sparse file (its real size is not its stored size)")
        if not (info.isreg() or info.isdir()):
            raise _unsafe(f"member {raw!r}: unsupported member type {info.type!r}")
        if not name and not info.isdir():
            raise _unsafe(f"member {raw!r}: names no file")
        size = 0 if info.isdir() else info.size
        compressed = None if self.source is not None else size
        return Member(name, size, compressed, info.isdir())

    def finish(self) -> None:
        """After the last member: the archive must end with its end-of-archive marker
        (tarfile stops silently at a truncated or garbled header), followed by nothing but
        zero padding; and the compressed stream must be complete (checksums verified)."""
        end = self.tf.offset
        if end < self.guard.tail_start:  # cannot happen: tarfile reads ahead one record
            raise _corrupt(f"lost track of the end of the archive at offset {end}")
        if self.guard.count < end + tarfile.BLOCKSIZE:
            raise _corrupt(
                f"truncated after member {self.guard.current!r}: no end-of-archive marker"
            )
        rest = self.guard.kept(end)
        if rest[: tarfile.BLOCKSIZE].count(0) != tarfile.BLOCKSIZE:
            raise _corrupt(
                f"unreadable header at offset {end}, after member {self.guard.current!r}"
            )
        trailing = len(rest)
        try:
            while chunk := self.guard.read(64 * KiB):
                rest += chunk
                trailing += len(chunk)
                if trailing > _TRAILER_LIMIT:
                    break
        except _TAR_BAD_BYTES as e:
            raise _corrupt(f"after the last member: {e}") from None
        if trailing > _TRAILER_LIMIT or rest.count(0) != len(rest):
            raise _unsafe("data hidden after the end-of-archive marker")


def inspect_tar(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    path = Path(path)
    archive_bytes = path.stat().st_size
    with _TarWalk(path, limits) as walk:
        members = [e.member for e in walk.entries()]
        walk.finish()
        produced = walk.guard.count
    if walk.source is not None and _ratio_over(produced, archive_bytes, limits):
        raise _unsafe(
            f"archive compression ratio {produced / max(archive_bytes, 1):.0f} over the limit "
            f"of {limits.max_ratio:g} ({produced} bytes from {archive_bytes})"
        )
    return members


def _tar_chunks(walk: _TarWalk, entry: _TarEntry, chunk_size: int) -> Iterator[bytes]:
    raw, declared = entry.info.name, entry.info.size
    f = walk.tf.extractfile(entry.info)
    if f is None:  # not a regular file; _member() lets none through
        return
    produced = 0
    try:
        while chunk := f.read(chunk_size):
            produced += len(chunk)
            if produced > declared or produced > walk.limits.max_member_bytes:
                raise _unsafe(f"member {raw!r}: yields more than the {declared} bytes declared")
            yield chunk
    except _TAR_BAD_BYTES as e:
        raise _corrupt(f"member {raw!r}: {e}") from None
    if produced < declared:
        raise _corrupt(f"member {raw!r}: ended after {produced} of {declared} declared bytes")


# --- any kind ---------------------------------------------------------------------------


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
        with _open_zip(path) as zf:
            for info in zf.infolist():
                member = _zip_member(info, limits)
                if member.name and not member.is_dir:
                    yield member, _zip_chunks(zf, info, limits, chunk_size)
        return
    with _TarWalk(path, limits) as walk:
        for entry in walk.entries():
            if not entry.member.is_dir:
                yield entry.member, _tar_chunks(walk, entry, chunk_size)


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
        with _open_zip(path) as zf:
            for info in zf.infolist():
                raw = info.orig_filename
                if _normalise(raw) == member_name and not raw.endswith("/"):
                    _zip_member(info, limits)
                    yield from _zip_chunks(zf, info, limits, chunk_size)
                    return
    else:
        with _TarWalk(path, limits) as walk:
            for entry in walk.entries():
                if entry.member.name == member_name and not entry.member.is_dir:
                    yield from _tar_chunks(walk, entry, chunk_size)
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
