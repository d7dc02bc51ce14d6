"""An S3 bucket (another endpoint and credentials, or auxip's own), and another auxip's
inbox (`kind: auxip`): its storage notification starts that auxip's ingest.

One PUT with Content-MD5 (the server refuses bytes that differ), then a HEAD: the size
must match, and so must the ETag, which for a single-part upload is the MD5."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from shared.adapters import storage
from shared.adapters.settings import Settings
from shared.core.checksums import Checksums
from shared.pipeline.routing.config import S3Target
from shared.pipeline.routing.targets.base import (
    CHECKSUM_MISMATCH,
    TARGET_REFUSED,
    TARGET_UNREACHABLE,
    TransferError,
    render,
)
from shared.pipeline.routing.targets.outbound import check_before_send

SINGLE_PUT_LIMIT = 5 * 1024**3


class BucketTarget:
    def __init__(self, config: S3Target, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.endpoint = config.endpoint or settings.s3_endpoint
        self._client: Any = None

    @property
    def s3(self) -> Any:
        # Made on first use: describing a destination needs no connection.
        if self._client is None:
            c = self.config
            self._client = storage.foreign_client(self.settings, c.endpoint, c.region,
                                                  c.access_key, c.secret_key)
        return self._client

    def where(self, product: Mapping[str, Any]) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.config.bucket}/" \
               f"{render(self.config.key, product)}"

    def deliver(self, product: Mapping[str, Any], body: IO[bytes],
                checksums: Checksums) -> None:
        bucket, key = self.config.bucket, render(self.config.key, product)
        check_before_send(self.config)
        body.seek(0)
        try:
            if checksums.size <= SINGLE_PUT_LIMIT:
                self.s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentLength=checksums.size,
                    ContentType=product.get("content_type") or "application/octet-stream",
                    ContentMD5=base64.b64encode(bytes.fromhex(checksums.md5)).decode())
            else:
                storage.put_stream(self.s3, bucket, key, body)
            stored = storage.head(self.s3, bucket, key)
        except EndpointConnectionError as error:
            raise TransferError(TARGET_UNREACHABLE, str(error)) from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code in ("BadDigest", "InvalidDigest"):
                raise TransferError(CHECKSUM_MISMATCH, f"s3://{bucket}/{key}: {code}") from None
            raise TransferError(TARGET_REFUSED, f"s3://{bucket}/{key}: {error}") from None
        except BotoCoreError as error:
            raise TransferError(TARGET_UNREACHABLE, f"s3://{bucket}/{key}: {error}") from None
        if stored is None:
            raise TransferError(TARGET_REFUSED, f"s3://{bucket}/{key}: not there after the PUT")
        if stored["size"] != checksums.size:
            raise TransferError(CHECKSUM_MISMATCH, f"s3://{bucket}/{key}: {stored['size']} "
                                                   f"bytes stored, {checksums.size} sent")
        etag = stored["etag"]
        if "-" not in etag and etag.lower() != checksums.md5:
            raise TransferError(CHECKSUM_MISMATCH, f"s3://{bucket}/{key}: ETag {etag}, "
                                                   f"MD5 sent {checksums.md5}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
