"""Tar archives (plain, gzip, bzip2, xz): one forward pass over headers and data, with
guards on decompression and on header sizes."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.core.archive_safety.limits import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    KiB,
    Member,
    MiB,
    NameBook,
    check_count,
    check_sizes,
    corrupt,
    normalise,
    ratio_over,
    unsafe,
)
from shared.core.attacks import Attack

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
            raise unsafe(f"extended header of {self.size} bytes at offset {self.offset}",
                         Attack.BOMB)
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
        if self.source is not None and ratio_over(self.count, self.source.count, self.limits):
            raise unsafe(
                f"decompresses to more than {self.limits.max_ratio:g} times its compressed "
                f"size ({self.count} bytes from {self.source.count}), at member "
                f"{self.current!r}", Attack.BOMB
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
class TarEntry:
    member: Member
    info: tarfile.TarInfo


class TarWalk:
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
            raise corrupt(f"not a readable tar archive: {e}") from None
        except BaseException:
            self.raw.close()
            raise

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> TarWalk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entries(self) -> Iterator[TarEntry]:
        book = NameBook()
        total = count = 0
        it = iter(self.tf)
        while True:
            try:
                info = next(it)
            except StopIteration:
                return
            except _TAR_BAD_BYTES as e:
                raise corrupt(f"after member {self.guard.current!r}: {e}") from None
            count += 1
            check_count(count, self.limits)
            member = self._member(info)
            self.guard.current = info.name
            total += member.size
            check_sizes(info.name, member.size, total, self.limits)
            if member.name:
                book.add(member.name, info.name, member.is_dir)
                yield TarEntry(member, info)

    def _member(self, info: tarfile.TarInfo) -> Member:
        raw = info.name
        name = normalise(raw)
        if info.issym():
            raise unsafe(f"member {raw!r}: symbolic link to {info.linkname!r}", Attack.ZIP_SLIP)
        if info.islnk():
            raise unsafe(f"member {raw!r}: hard link to {info.linkname!r}", Attack.ZIP_SLIP)
        if info.ischr() or info.isblk() or info.isfifo():
            raise unsafe(f"member {raw!r}: device or fifo")
        if info.issparse():
            raise unsafe(f"member {raw!r}: sparse file (its real size is not its stored size)")
        if not (info.isreg() or info.isdir()):
            raise unsafe(f"member {raw!r}: unsupported member type {info.type!r}")
        if not name and not info.isdir():
            raise unsafe(f"member {raw!r}: names no file")
        size = 0 if info.isdir() else info.size
        compressed = None if self.source is not None else size
        return Member(name, size, compressed, info.isdir())

    def finish(self) -> None:
        """After the last member: the archive must end with its end-of-archive marker
        (tarfile stops silently at a truncated or garbled header), followed by nothing but
        zero padding; and the compressed stream must be complete (checksums verified)."""
        end = self.tf.offset
        if end < self.guard.tail_start:  # cannot happen: tarfile reads ahead one record
            raise corrupt(f"lost track of the end of the archive at offset {end}")
        if self.guard.count < end + tarfile.BLOCKSIZE:
            raise corrupt(
                f"truncated after member {self.guard.current!r}: no end-of-archive marker"
            )
        rest = self.guard.kept(end)
        if rest[: tarfile.BLOCKSIZE].count(0) != tarfile.BLOCKSIZE:
            raise corrupt(
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
            raise corrupt(f"after the last member: {e}") from None
        if trailing > _TRAILER_LIMIT or rest.count(0) != len(rest):
            raise unsafe("data hidden after the end-of-archive marker")


def inspect_tar(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    path = Path(path)
    archive_bytes = path.stat().st_size
    with TarWalk(path, limits) as walk:
        members = [e.member for e in walk.entries()]
        walk.finish()
        produced = walk.guard.count
    if walk.source is not None and ratio_over(produced, archive_bytes, limits):
        raise unsafe(
            f"archive compression ratio {produced / max(archive_bytes, 1):.0f} over the limit "
            f"of {limits.max_ratio:g} ({produced} bytes from {archive_bytes})", Attack.BOMB
        )
    return members


def tar_chunks(walk: TarWalk, entry: TarEntry, chunk_size: int) -> Iterator[bytes]:
    raw, declared = entry.info.name, entry.info.size
    f = walk.tf.extractfile(entry.info)
    if f is None:  # not a regular file; _member() lets none through
        return
    produced = 0
    try:
        while chunk := f.read(chunk_size):
            produced += len(chunk)
            if produced > declared or produced > walk.limits.max_member_bytes:
                raise unsafe(f"member {raw!r}: yields more than the {declared} bytes declared",
                             Attack.BOMB)
            yield chunk
    except _TAR_BAD_BYTES as e:
        raise corrupt(f"member {raw!r}: {e}") from None
    if produced < declared:
        raise corrupt(f"member {raw!r}: ended after {produced} of {declared} declared bytes")


