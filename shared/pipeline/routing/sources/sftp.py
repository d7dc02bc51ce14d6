"""A directory on an SFTP server (the Mission Planning Interface Point offers SFTP).

One session per poll run, opened on first use. Sizes and modification times come from
the listing; a file younger than `settle_s` may still be being written."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import paramiko

from shared.pipeline.routing import sftp
from shared.pipeline.routing.config import SftpSource
from shared.pipeline.routing.sources.base import Item, SourceError

CHUNK = 256 * 1024
PAGE = 500


class SftpFiles:
    def __init__(self, config: SftpSource) -> None:
        self.config = config
        self._stack = ExitStack()
        self._client: paramiko.SFTPClient | None = None

    def _sftp(self) -> paramiko.SFTPClient:
        if self._client is None:
            try:
                self._client = self._stack.enter_context(sftp.session(self.config.login))
            except sftp.SftpError as error:
                raise SourceError(str(error)) from None
        return self._client

    def _path(self, relative: str) -> str:
        return f"{self.config.path.rstrip('/')}/{relative}"

    def pages(self, state: Mapping[str, Any]) -> Iterator[list[Item]]:
        settled_before = time.time() - self.config.settle_s
        page: list[Item] = []
        try:
            listing = list(sftp.walk(self._sftp(), self.config.path, self.config.recursive))
        except OSError as error:
            raise SourceError(f"sftp {self.config.path}: {error}") from None
        for relative, attributes in listing:
            if (attributes.st_mtime or 0) > settled_before:
                continue
            item = Item(key=relative, name=relative, size=attributes.st_size,
                        version=f"{attributes.st_size}:{attributes.st_mtime}")
            if not self.config.wants(item.product_name):
                continue
            page.append(item)
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page

    @contextmanager
    def open(self, item: Item) -> Iterator[Iterator[bytes]]:
        try:
            handle = self._sftp().open(self._path(item.key), "rb")
            handle.prefetch(item.size)  # pipelined reads: far faster than one at a time
        except OSError as error:
            raise SourceError(f"sftp {item.key}: {error}") from None
        with handle:
            yield iter(lambda: handle.read(CHUNK), b"")

    def remove(self, item: Item) -> None:
        try:
            self._sftp().remove(self._path(item.key))
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self._stack.close()
