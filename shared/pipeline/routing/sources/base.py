"""What every source gives the poller: `Item`s to fetch, their bytes, and SourceError."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


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
