"""A local or mounted directory (an outbox shared over NFS, a drop folder).

Regular files only: symbolic links are skipped, so a link cannot pull in a file from
elsewhere on the machine. A file modified less than `settle_s` ago may still be being
written and waits for a later poll.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.pipeline.routing.config import DirectorySource
from shared.pipeline.routing.sources.base import Item, SourceError

CHUNK = 1024 * 1024
PAGE = 500


class DirectoryFiles:
    def __init__(self, config: DirectorySource) -> None:
        self.config = config
        self.root = Path(config.path)

    def pages(self, state: Mapping[str, Any]) -> Iterator[list[Item]]:
        if not self.root.is_dir():
            raise SourceError(f"{self.root} is not a directory")
        page: list[Item] = []
        for item in self._walk():
            page.append(item)
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page

    def _walk(self) -> Iterator[Item]:
        settled_before = time.time() - self.config.settle_s
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) \
                if self.config.recursive else []
            for filename in sorted(files):
                path = Path(folder) / filename
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue  # removed while listing
                if path.is_symlink() or not path.is_file() or info.st_mtime > settled_before:
                    continue
                relative = path.relative_to(self.root).as_posix()
                item = Item(key=relative, name=relative, size=info.st_size,
                            version=f"{info.st_size}:{info.st_mtime_ns}")
                if self.config.wants(item.product_name):
                    yield item

    @contextmanager
    def open(self, item: Item) -> Iterator[Iterator[bytes]]:
        try:
            handle = open(self.root / item.key, "rb")
        except OSError as error:
            raise SourceError(f"{item.key}: {error.strerror}") from None
        with handle:
            yield iter(lambda: handle.read(CHUNK), b"")

    def remove(self, item: Item) -> None:
        path = self.root / item.key
        path.unlink(missing_ok=True)
        # Empty folders a SAFE product leaves behind go too, never the root itself.
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def close(self) -> None:
        pass
