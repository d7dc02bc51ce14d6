"""Which product an inbox object belongs to.

A SAFE product may arrive as one archive (`X.SAFE.zip`, `X.zip`, `X.tgz`) or as a folder of
objects (`X.SAFE/manifest.safe`, `X.SAFE/data/...`), possibly under a prefix. Everything
else is a single file named by the last component of its key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arrival:
    bucket: str
    key: str
    name: str  # the product file name to parse (X.SAFE for a folder object)
    folder_prefix: str | None  # "prefix/X.SAFE/" when the object is part of a SAFE folder

    @property
    def is_folder(self) -> bool:
        return self.folder_prefix is not None


def locate(bucket: str, key: str) -> Arrival:
    parts = key.split("/")
    for index, part in enumerate(parts[:-1]):
        if part.endswith(".SAFE"):
            prefix = "/".join(parts[: index + 1]) + "/"
            return Arrival(bucket=bucket, key=key, name=part, folder_prefix=prefix)
    return Arrival(bucket=bucket, key=key, name=parts[-1], folder_prefix=None)


def is_folder_marker(key: str, size: int) -> bool:
    """Console uploads create empty `dir/` objects; they are not files."""
    return key.endswith("/") and size == 0
