"""An S3 bucket of another system (its own endpoint and credentials), or of this one.

The ETag of an object uploaded in one part is its MD5 and is checked after the copy; a
multipart ETag ("...-N") is not, and only the size is."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters import storage
from shared.adapters.settings import Settings
from shared.pipeline.routing.config import S3Source
from shared.pipeline.routing.sources.base import Item, SourceError


class BucketFiles:
    def __init__(self, config: S3Source, settings: Settings) -> None:
        self.config = config
        self.s3 = storage.foreign_client(settings, config.endpoint, config.region,
                                         config.access_key, config.secret_key)

    def pages(self, state: Mapping[str, Any]) -> Iterator[list[Item]]:
        c = self.config
        settled_before = time.time() - c.settle_s
        paginator = self.s3.get_paginator("list_objects_v2")
        arguments = {"Bucket": c.bucket, "Prefix": c.prefix}
        if not c.recursive:
            arguments["Delimiter"] = "/"
        try:
            for page in paginator.paginate(**arguments):
                items = []
                for entry in page.get("Contents", []):
                    key = entry["Key"]
                    relative = key[len(c.prefix):]
                    if not relative or relative.endswith("/"):
                        continue  # the prefix itself, folder markers
                    if entry["LastModified"].timestamp() > settled_before:
                        continue
                    etag = entry["ETag"].strip('"')
                    item = Item(key=key, name=relative, size=int(entry["Size"]), version=etag,
                                md5=None if "-" in etag else etag)
                    if c.wants(item.product_name):
                        items.append(item)
                yield items
        except (BotoCoreError, ClientError) as error:
            raise SourceError(f"s3://{c.bucket}/{c.prefix}: {error}") from None

    @contextmanager
    def open(self, item: Item) -> Iterator[Iterator[bytes]]:
        try:
            chunks, _, _ = storage.open_stream(self.s3, self.config.bucket, item.key)
        except (BotoCoreError, ClientError) as error:
            raise SourceError(f"s3://{self.config.bucket}/{item.key}: {error}") from None
        try:
            yield chunks
        finally:
            chunks.close()  # type: ignore[attr-defined]

    def remove(self, item: Item) -> None:
        storage.delete(self.s3, self.config.bucket, item.key)

    def close(self) -> None:
        self.s3.close()
