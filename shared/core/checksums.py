"""Checksums computed while bytes stream past: MD5 (what every AUXIP client checks) and
XXH3-128 (fast, modern; what auxip itself compares)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import xxhash

MD5 = "MD5"
XXH3 = "XXH3-128"


class Digest:
    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._xxh = xxhash.xxh3_128()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._xxh.update(chunk)
        self.size += len(chunk)

    def result(self) -> Checksums:
        return Checksums(md5=self._md5.hexdigest(), xxh3=self._xxh.hexdigest(), size=self.size)


@dataclass(frozen=True)
class Checksums:
    md5: str
    xxh3: str
    size: int

    def as_odata(self, when: datetime) -> list[dict[str, str]]:
        return dated([(MD5, self.md5), (XXH3, self.xxh3)], when)


def dated(pairs: Iterable[tuple[str, str]], when: datetime) -> list[dict[str, str]]:
    """The OData `Checksum` entries of (algorithm, value) pairs summed at `when`."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return [{"Algorithm": algorithm, "Value": value, "ChecksumDate": stamp}
            for algorithm, value in pairs]


def digest_through(chunks: Iterable[bytes], digest: Digest) -> Iterator[bytes]:
    """Pass chunks on unchanged, feeding each to `digest` on the way."""
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def of_bytes(data: bytes) -> Checksums:
    digest = Digest()
    digest.update(data)
    return digest.result()
