"""Zip archives: the central directory checked against the local headers, members and
their guarded decompression."""

from __future__ import annotations

import copy
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shared.core.archive_safety.limits import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    Member,
    NameBook,
    check_count,
    check_sizes,
    corrupt,
    normalise,
    ratio_over,
    unsafe,
)
from shared.core.attacks import Attack

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


def open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        return zipfile.ZipFile(path)
    except _ZIP_BAD_BYTES as e:
        raise corrupt(f"not a readable zip archive: {e}") from None


def zip_member(info: zipfile.ZipInfo, limits: ArchiveLimits) -> Member:
    """Per-entry checks that need only the central directory entry."""
    raw = info.orig_filename  # before zipfile cuts the name at a NUL byte
    name = normalise(raw)
    is_dir = raw.endswith("/")
    if info.flag_bits & (_ZIP_ENCRYPTED | _ZIP_STRONG_ENCRYPTION) or info.compress_type == _ZIP_AES:
        raise unsafe(f"member {raw!r}: encrypted (its content cannot be checked)")
    if info.compress_type not in _ZIP_METHODS:
        raise unsafe(
            f"member {raw!r}: compression method {info.compress_type} not accepted "
            "(only stored and deflate)"
        )
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise unsafe(f"member {raw!r}: symbolic link", Attack.ZIP_SLIP)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise unsafe(f"member {raw!r}: device, fifo or socket (mode {kind:#o})")
    if info.external_attr & _WIN_REPARSE_POINT:
        raise unsafe(f"member {raw!r}: Windows reparse point (symbolic link or junction)",
                     Attack.ZIP_SLIP)
    if not name:
        if not is_dir:
            raise unsafe(f"member {raw!r}: names no file")
    if is_dir and info.file_size:
        raise unsafe(f"member {raw!r}: a folder entry carrying {info.file_size} bytes")
    if ratio_over(info.file_size, info.compress_size, limits):
        raise unsafe(
            f"member {raw!r}: compression ratio {info.file_size / max(info.compress_size, 1):.0f}"
            f" over the limit of {limits.max_ratio:g} ({info.file_size} bytes from "
            f"{info.compress_size})", Attack.BOMB
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
            raise corrupt(f"member {raw!r}: header offset {info.header_offset} outside the data")
        if info.header_offset < prev_end:
            raise unsafe(f"member {raw!r}: overlaps the data of member {prev_name!r}",
                         Attack.BOMB)
        if prev_name is None and info.header_offset > 0:
            raise unsafe(
                f"{info.header_offset} bytes before the first member {raw!r} "
                "(a self-extracting or polyglot file)"
            )
        raw_file.seek(info.header_offset)
        header = raw_file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise corrupt(f"member {raw!r}: local header cut off")
        sig, _v, flags, _m, _t, _d, _crc, _cs, _us, name_len, extra_len = _LOCAL_HEADER.unpack(
            header
        )
        if sig != b"PK\x03\x04":
            raise corrupt(f"member {raw!r}: no local header at offset {info.header_offset}")
        local_name = raw_file.read(name_len).decode(
            "utf-8" if flags & _ZIP_UTF8 else "cp437", errors="replace"
        )
        if local_name != raw:
            raise unsafe(
                f"member {raw!r}: its local header names it {local_name!r} "
                "(extractors disagree on which name is real)"
            )
        if flags & (_ZIP_ENCRYPTED | _ZIP_STRONG_ENCRYPTION):
            raise unsafe(f"member {raw!r}: encrypted (its content cannot be checked)")
        data_end = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        data_end += info.compress_size
        if data_end > end_of_data:
            raise corrupt(f"member {raw!r}: data runs past the central directory")
        prev_end, prev_name = data_end, raw


def inspect_zip(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    path = Path(path)
    archive_bytes = path.stat().st_size
    with open_zip(path) as zf:
        infos = zf.infolist()
        check_count(len(infos), limits)
        book = NameBook()
        members: list[Member] = []
        total = 0
        for info in infos:
            member = zip_member(info, limits)
            total += member.size
            check_sizes(info.orig_filename, member.size, total, limits)
            if member.name:
                book.add(member.name, info.orig_filename, member.is_dir)
                members.append(member)
        with open(path, "rb") as raw_file:
            _check_zip_layout(zf, raw_file)
    if ratio_over(total, archive_bytes, limits):
        raise unsafe(
            f"archive compression ratio {total / max(archive_bytes, 1):.0f} over the limit of "
            f"{limits.max_ratio:g} ({total} bytes from {archive_bytes})", Attack.BOMB
        )
    return members


def zip_chunks(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, chunk_size: int
) -> Iterator[bytes]:
    raw = info.orig_filename
    declared = info.file_size
    if declared > limits.max_member_bytes:
        raise unsafe(f"member {raw!r}: {declared} bytes, over the limit", Attack.BOMB)
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
                    raise unsafe(
                        f"member {raw!r}: yields more than the {declared} bytes its header declares",
                        Attack.BOMB,
                    )
                crc = zlib.crc32(chunk, crc)
                yield chunk
    except _ZIP_BAD_BYTES as e:
        raise corrupt(f"member {raw!r}: {e}") from None
    if produced < declared:
        raise corrupt(f"member {raw!r}: ended after {produced} of {declared} declared bytes")
    if crc != info.CRC:
        raise corrupt(f"member {raw!r}: CRC-32 mismatch (damaged data)")


