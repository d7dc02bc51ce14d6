"""Object storage: the S3 calls every function makes, against Ceph RGW locally or MinIO.

Plain functions over a botocore S3 client built once by `client(settings)` and handed in
(shared.adapters.s3_client); the client is thread-safe, so one per process is enough.
botocore is imported where a client is built or an S3 error caught, boto3's managed
transfers where a multipart upload runs, not with this module: they cost time and MBs at a
cold start, and functions that never touch S3 import this module too.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import SecretStr

from shared.adapters.settings import Settings

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

MiB = 1024**2
GiB = 1024**3
# S3 refuses a single CopyObject above 5 GiB; multipart parts are 5 MiB..5 GiB.
COPY_LIMIT = 5 * GiB
COPY_PART = 512 * MiB
# put_file sends one PUT up to this size (one request, the ETag is the MD5), parts above.
UPLOAD_PART = 64 * MiB
CHUNK = 1 * MiB

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def client(settings: Settings) -> Any:
    """A botocore S3 client for the configured endpoint.

    Path-style addressing: RGW and MinIO run without wildcard DNS. The pool is sized for
    16 worker threads plus managed transfers; adaptive retries back off on 503 SlowDown.
    """
    from botocore.config import Config

    from shared.adapters import s3_client

    endpoint, access_key, secret_key = settings.require_s3()
    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=5,
        read_timeout=120,
        retries={"mode": "adaptive", "max_attempts": 6},
        max_pool_connections=32,
        # RGW 16 and older MinIO reject or ignore the newer default CRC checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return s3_client.build(endpoint, access_key, secret_key, config)


def foreign_client(settings: Settings, endpoint: str | None, region: str,
                   access_key: str | None, secret_key: str | None) -> Any:
    """A client for another S3 endpoint or other credentials (a routing source or target),
    else auxip's own; configured like `client`."""
    update: dict[str, Any] = {"s3_region": region}
    if endpoint:
        update["s3_endpoint"] = endpoint
    if access_key and secret_key:
        update["s3_access_key"] = access_key
        update["s3_secret_key"] = SecretStr(secret_key)
    return client(settings.model_copy(update=update))


def is_missing(error: ClientError) -> bool:
    """The error says the object (or its bucket) does not exist."""
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


def _etag(raw: str) -> str:
    return raw.strip('"')


def put_bytes(
    s3: Any,
    bucket: str,
    key: str,
    data: bytes,
    *,
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Store `data`; returns the ETag (without quotes)."""
    answer = s3.put_object(
        Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=dict(metadata or {})
    )
    return _etag(answer["ETag"])


def put_file(
    s3: Any,
    bucket: str,
    key: str,
    path: Path,
    *,
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Upload a file (multipart above UPLOAD_PART); returns the ETag."""
    extra = {"ContentType": content_type, "Metadata": dict(metadata or {})}
    if path.stat().st_size <= UPLOAD_PART:
        with open(path, "rb") as body:
            return _etag(s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)["ETag"])
    # boto3's managed transfer, as its injected `upload_file` runs it (the client is
    # botocore's: shared.adapters.s3_client).
    from boto3.s3.transfer import S3Transfer, TransferConfig

    transfer = TransferConfig(
        multipart_threshold=UPLOAD_PART, multipart_chunksize=UPLOAD_PART, max_concurrency=4
    )
    with S3Transfer(s3, transfer) as uploads:
        uploads.upload_file(str(path), bucket, key, extra_args=extra)
    return _etag(s3.head_object(Bucket=bucket, Key=key)["ETag"])


def put_stream(s3: Any, bucket: str, key: str, stream: IO[bytes], **extra: Any) -> None:
    """Upload from a file-like object of unknown length (managed multipart)."""
    # boto3's managed transfer, as its injected `upload_fileobj` runs it.
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    with create_transfer_manager(s3, TransferConfig()) as manager:
        manager.upload(fileobj=stream, bucket=bucket, key=key, extra_args=extra or None).result()


def open_stream(
    s3: Any, bucket: str, key: str, *, byte_range: str | None = None, chunk_size: int = CHUNK
) -> tuple[Iterator[bytes], int, str]:
    """(chunks, size, etag) of an object; the body is closed when the iterator ends or closes.

    `byte_range` is an HTTP Range value ("bytes=0-99"); size is then the part's length.
    """
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if byte_range:
        args["Range"] = byte_range
    answer = s3.get_object(**args)
    body = answer["Body"]
    return _chunks(body, chunk_size), int(answer["ContentLength"]), _etag(answer["ETag"])


@dataclass
class Opened:
    """An object being read: what its GET answered, and its body as chunks. `close` frees
    the connection when the body is not read to its end (a refusal on the size alone)."""

    size: int
    etag: str
    chunks: Iterator[bytes]
    close: Any


def open_object(s3: Any, bucket: str, key: str, *, chunk_size: int = CHUNK) -> Opened | None:
    """The object opened for reading, None when absent: one GET answers what a HEAD would
    (size, ETag) before any byte of the body is read."""
    from botocore.exceptions import ClientError  # loaded with the client already

    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    body = answer["Body"]
    return Opened(int(answer["ContentLength"]), _etag(answer["ETag"]), _chunks(body, chunk_size),
                  body.close)


def _chunks(body: Any, chunk_size: int) -> Iterator[bytes]:
    """A GET's body as chunks; its connection freed however the reading ends."""
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


@dataclass
class Unread:
    """A GET's body handed over at the socket: `first` the bytes the HTTP client had
    already buffered (handed out as they are), then `left` bytes to read from `sock`."""

    first: bytes
    sock: socket.socket
    left: int


# At least the HTTP client's read buffer (http.client reads through a BufferedReader of
# io.DEFAULT_BUFFER_SIZE): one read1 of this much empties it.
UNREAD_FIRST = 256 * 1024


def take_socket(body: Any) -> Unread | None:
    """The connection of a GET's body (a botocore StreamingBody nothing was read from), to
    read the rest of the body from its socket directly; None when that is not possible:
    TLS, a body not framed by Content-Length, a content coding, another HTTP client.

    After this the body's reader no longer knows where the body ends: its connection must
    be closed (body.close()), never reused.
    """
    from urllib3.exceptions import HTTPError  # loaded with the client already
    from urllib3.response import HTTPResponse

    raw = getattr(body, "_raw_stream", None)
    if not isinstance(raw, HTTPResponse) or raw.tell() != 0:
        return None
    connection = raw.connection
    sock = getattr(connection, "sock", None)
    headers = raw.headers
    if (type(sock) is not socket.socket or raw.length_remaining is None
            or headers.get("Content-Encoding", "identity").lower() != "identity"
            or "Transfer-Encoding" in headers):
        return None
    try:
        first = raw.read1(UNREAD_FIRST, decode_content=False)
    except HTTPError as error:
        from botocore.exceptions import ResponseStreamingError

        raise ResponseStreamingError(error=error) from error
    return Unread(first, sock, raw.length_remaining)


def iter_chunks(s3: Any, bucket: str, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """The object's bytes as chunks, the request made on the first one."""
    chunks, _, _ = open_stream(s3, bucket, key, chunk_size=chunk_size)
    yield from chunks


def get_bytes(s3: Any, bucket: str, key: str) -> bytes:
    answer = s3.get_object(Bucket=bucket, Key=key)
    with answer["Body"] as body:
        return body.read()


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """size, etag, content_type, metadata and last_modified of an object; None when absent."""
    from botocore.exceptions import ClientError

    try:
        answer = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    return {
        "size": int(answer["ContentLength"]),
        "etag": _etag(answer["ETag"]),
        "content_type": answer.get("ContentType", "application/octet-stream"),
        "metadata": answer.get("Metadata", {}),
        "last_modified": answer.get("LastModified"),
    }


def exists(s3: Any, bucket: str, key: str) -> bool:
    return head(s3, bucket, key) is not None


def copy(
    s3: Any,
    src_bucket: str,
    src_key: str,
    dst_bucket: str,
    dst_key: str,
    *,
    limit: int = COPY_LIMIT,
    part_size: int = COPY_PART,
    size: int | None = None,
) -> str:
    """Server-side copy (no bytes through this process); returns the new ETag.

    Objects above `limit` are copied part by part (UploadPartCopy), keeping content type
    and metadata. A multipart copy's ETag is not an MD5: compare checksums, not ETags.
    A caller that knows the source's `size` (it has just read it) saves the HEAD when
    one CopyObject will do; CopyObject itself fails on a source that is gone.
    """
    source = {"Bucket": src_bucket, "Key": src_key}
    if size is not None and size <= limit:
        answer = s3.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source)
        return _etag(answer["CopyObjectResult"]["ETag"])
    info = s3.head_object(**source)
    size = int(info["ContentLength"])  # the raw answer: ContentType/Metadata go along
    if size <= limit:
        answer = s3.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source)
        return _etag(answer["CopyObjectResult"]["ETag"])
    upload = s3.create_multipart_upload(
        Bucket=dst_bucket,
        Key=dst_key,
        ContentType=info.get("ContentType", "application/octet-stream"),
        Metadata=info.get("Metadata", {}),
    )
    upload_id = upload["UploadId"]
    parts = []
    try:
        for number, first in enumerate(range(0, size, part_size), start=1):
            last = min(first + part_size, size) - 1
            answer = s3.upload_part_copy(
                Bucket=dst_bucket,
                Key=dst_key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={first}-{last}",
            )
            parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        done = s3.complete_multipart_upload(
            Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=dst_bucket, Key=dst_key, UploadId=upload_id)
        raise
    if done.get("ETag"):
        return _etag(done["ETag"])
    # RGW 16 answers CompleteMultipartUpload with an empty ETag element.
    return _etag(s3.head_object(Bucket=dst_bucket, Key=dst_key)["ETag"])


def delete(s3: Any, bucket: str, key: str) -> None:
    """Remove an object; absent objects are not an error (S3 semantics)."""
    s3.delete_object(Bucket=bucket, Key=key)


def list_objects(s3: Any, bucket: str, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(key, size) of every object under `prefix`, in key order."""
    for item in list_listed(s3, bucket, prefix):
        yield item.key, item.size


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str
    last_modified: datetime


def list_listed(s3: Any, bucket: str, prefix: str = "", *, start_after: str = "",
                page_size: int = 1000) -> Iterator[Listed]:
    """Every object under `prefix` (and after the key `start_after`) with what the listing
    says of it, in key order, `page_size` keys a request (S3's most: 1000)."""
    extra = {"StartAfter": start_after} if start_after else {}
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}, **extra)
    for page in pages:
        for item in page.get("Contents", []):
            yield Listed(item["Key"], int(item["Size"]), _etag(item.get("ETag", "")),
                         item["LastModified"])


def list_keys(s3: Any, bucket: str, prefix: str = "") -> Iterator[str]:
    for key, _ in list_objects(s3, bucket, prefix):
        yield key


def delete_prefix(s3: Any, bucket: str, prefix: str = "") -> int:
    """Remove every object under `prefix` (1000 per request); returns how many."""
    removed = 0
    batch: list[dict[str, str]] = []
    for key in list_keys(s3, bucket, prefix):
        batch.append({"Key": key})
        if len(batch) == 1000:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            removed += len(batch)
            batch = []
    if batch:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        removed += len(batch)
    return removed


def bucket_exists(s3: Any, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as error:
        if is_missing(error):
            return False
        raise


def ensure_bucket(s3: Any, bucket: str) -> bool:
    """Create the bucket unless it exists; True when created now."""
    if bucket_exists(s3, bucket):
        return False
    from botocore.exceptions import ClientError

    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            return False
        raise
    return True
