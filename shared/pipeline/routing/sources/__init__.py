"""Where pollers find files: one module per kind of source, each listing `Item`s and
opening them as streams of bytes. `open_source` builds the one a configuration names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.pipeline.routing import config


@dataclass(frozen=True)
class Item:
    key: str  # identity within the source: path, object key, OData product Id
    name: str  # where it goes under the source's inbox prefix (X.EOF, X.SAFE/manifest.safe)
    size: int | None  # as the source announces it
    version: str  # changes when the content may have: ETag, MD5, size and mtime
    md5: str | None = None  # announced MD5 (hex), checked after the copy
    published: datetime | None = None  # OData PublicationDate: moves the window

    @property
    def product_name(self) -> str:
        """The product the item belongs to: the X.SAFE folder it is in, else the file
        (as the ingest step will see it, whatever folders the source keeps it in)."""
        parts = self.name.split("/")
        return next((p for p in parts[:-1] if p.endswith(".SAFE")), parts[-1])


class Source(Protocol):
    def pages(self, state: Mapping[str, Any]) -> Iterator[list[Item]]:
        """Candidate items in pages (seen ones included: the poller skips them)."""

    def open(self, item: Item) -> AbstractContextManager[Iterator[bytes]]:
        """The item's bytes."""

    def remove(self, item: Item) -> None:
        """Delete it at the source (only called when the source says delete_after_fetch)."""

    def close(self) -> None: ...


class SourceError(RuntimeError):
    """The source cannot be listed or read now (down, refused, bad answer)."""


def open_source(source: Any, settings: Any, environ: Mapping[str, str]) -> Source:
    """The Source for a configuration model (its ${AUXIP_...} references expanded here)."""
    resolved = config.expand(source, environ)
    if resolved.kind == "odata":
        from shared.pipeline.routing.sources.odata import ODataFiles
        return ODataFiles(resolved)
    if resolved.kind == "s3":
        from shared.pipeline.routing.sources.s3 import BucketFiles
        return BucketFiles(resolved, settings)
    if resolved.kind == "directory":
        from shared.pipeline.routing.sources.directory import DirectoryFiles
        return DirectoryFiles(resolved)
    if resolved.kind == "sftp":
        from shared.pipeline.routing.sources.sftp import SftpFiles
        return SftpFiles(resolved)
    raise config.ConfigError(f"unknown source kind {resolved.kind!r}")
