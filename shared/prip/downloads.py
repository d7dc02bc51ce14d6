"""`Products(<Id>)/$value`: the product's bytes, streamed from the archive (never whole in
memory), with a single byte range when asked, or a `307` to a presigned URL of the archive
object when AUXIP_DOWNLOAD_REDIRECT is on.

Decisions:
- An offline product (listed, but its bytes are not downloadable now) answers `410 Gone`
  with an OData error `ProductOffline`: the Id exists (so not 404), the bytes do not.
- A product the catalogue has online whose archive object is missing, or not of its
  catalogued size, answers `503` `ProductUnavailable` with `Retry-After` (never a 500):
  the bytes can come back (`auxip products verify --repair`, the same file uploaded again)
  and the client should retry later, not give up as on a 410. It is logged as an error
  and counted (`auxip_archive_disagreements_total{found_by="download"}`). HEAD and the
  redirect check the object too, so they never promise what GET cannot give.
- One range only (`bytes=a-b`, `a-`, `-n`); a list of ranges, another unit or a malformed
  value is ignored and the whole product is sent (RFC 9110 14.2 allows it). Past the end:
  `416` with `Content-Range: bytes */<size>`. `If-Range` with another ETag: whole product.
- ETag is the MD5 (strong: the bytes never change under an Id); `Digest: md5=<base64>`
  (RFC 3230) and `X-Checksum-<Algorithm>: <hex>` carry every catalogued checksum.
  `If-None-Match` naming it is answered `304` (conditional.py): no slot, no bytes, and no
  audit entry (nothing is downloaded, as for HEAD).
- The quota slot is taken before the first byte and released when the stream ends, fails
  or the client goes away (the WSGI server closes the iterator then); a redirect takes no
  slot: the bytes do not pass through us.
- A streamed body of ZERO_COPY_MIN bytes or more is relayed from the S3 connection to the
  client's by splice(2) (shared.adapters.zero_copy) when the WSGI server hands out a
  client socket a body can be written on as is (gunicorn's sync or gthread worker,
  HTTP/1.x, no TLS) and the S3 connection is plain TCP: the bytes never enter prip's
  memory (two copies per byte saved: about a quarter of prip's CPU per 512 MiB on
  loopback; the rest is the kernel's TCP work on the two connections). The
  first bytes still go through the server (they carry its headers out); the S3
  connection is closed afterwards rather than pooled (its reader lost track of the body),
  hence the size floor. Anything else, or AUXIP_DOWNLOAD_ZERO_COPY=false: 1 MiB chunks.
  gunicorn's own byte count (its access log, off by default) then covers the first
  chunk only; the audit log and auxip_download_bytes_total count every byte.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from werkzeug.http import http_date
from werkzeug.wrappers import Response

from shared.adapters import storage, zero_copy
from shared.adapters.catalogue.audit import AuditEntry
from shared.adapters.telemetry import metrics, security_events
from shared.odata import ODataError
from shared.prip import audit, conditional, errors
from shared.prip.auth import Principal
from shared.prip.quotas import RETRY_AFTER_S, Busy, Slot

if TYPE_CHECKING:
    from shared.prip.service import Service

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_S = 600  # restoring bytes is an operator's doing: minutes, not seconds
# Below it the S3 connection a zero-copy relay cannot give back to the pool costs more
# than the copies it saves (a new connection: a round trip, RGW's accept).
ZERO_COPY_MIN = 8 * 1024 * 1024

_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]{0,19})\s*-\s*([0-9]{0,19})\s*", re.ASCII | re.I)
_TOKEN_NAME = re.compile(r"[A-Za-z0-9!#$&+.^_`|~-]+", re.ASCII)
_HEADER_SAFE = re.compile(r"[^A-Za-z0-9-]", re.ASCII)


@dataclass(frozen=True)
class ByteRange:
    first: int
    last: int  # inclusive

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def header(self) -> str:
        return f"bytes={self.first}-{self.last}"


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to send; None for the whole product; Unsatisfiable past the end."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None  # several ranges, another unit, garbage: the whole product
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        return ByteRange(max(0, size - suffix), size - 1)
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: ignored, like any other unreadable Range
    if first >= size:
        raise Unsatisfiable()
    last = int(last_text) if last_text else size - 1
    return ByteRange(first, min(last, size - 1))


def content_disposition(name: str) -> str:
    # Unquoted when the name is an HTTP token (every S1 name is): naive clients split on
    # "filename=" and would keep the quotes.
    if _TOKEN_NAME.fullmatch(name):
        return f"attachment; filename={name}"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def md5_of(checksums: object) -> str | None:
    for item in checksums if isinstance(checksums, list) else []:
        if isinstance(item, dict) and str(item.get("Algorithm", "")).upper() == "MD5":
            value = item.get("Value")
            if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{32}", value):
                return value.lower()
    return None


def checksum_headers(checksums: object) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in checksums if isinstance(checksums, list) else []:
        if not isinstance(item, dict):
            continue
        algorithm, value = item.get("Algorithm"), item.get("Value")
        if isinstance(algorithm, str) and isinstance(value, str) and value.isalnum():
            headers[f"X-Checksum-{_HEADER_SAFE.sub('-', algorithm)}"] = value
    md5 = md5_of(checksums)
    if md5 is not None:
        headers["ETag"] = f'"{md5}"'
        headers["Digest"] = "md5=" + base64.b64encode(binascii.unhexlify(md5)).decode()
    return headers


@dataclass(frozen=True)
class Caller:
    """What the download needs to know of the request, read before streaming starts (the
    stream runs after the view returned, outside the request context)."""

    principal: Principal
    method: str
    range_header: str | None
    if_range: str | None
    client_address: str | None
    origin_details: dict[str, object]
    if_none_match: str | None = None
    client_socket: socket.socket | None = None  # where a body may be written as is


def writable_socket(environ: Mapping[str, Any]) -> socket.socket | None:
    """The client's connection, when the WSGI server hands it out and bytes written on it
    after the server's first write are the body as is: gunicorn's sync and gthread
    workers over HTTP/1.x on plain TCP. Not HTTP/2 (the server writes frames), TLS (it
    writes records) or gevent/eventlet workers (their sockets are of another type)."""
    sock = environ.get("gunicorn.socket")
    if type(sock) is not socket.socket or environ.get("SERVER_PROTOCOL") not in (
            "HTTP/1.0", "HTTP/1.1"):
        return None
    return sock


def serve(service: Service, caller: Caller, product_id: UUID, row: Mapping[str, Any] | None
          ) -> Response:
    """The response to `GET|HEAD Products(<Id>)/$value` of a reader; `row` is the published
    product or None."""
    head = caller.method == "HEAD"

    def note(outcome: str, **fields: Any) -> None:
        if not head:  # HEAD reads metadata only: not a download
            _audit(service, caller, product_id, outcome, **fields)

    if row is None:
        note("not_found")
        raise errors.not_found("product")
    if not row["online"] or not row.get("distribution_key"):
        note("offline")
        raise ODataError(errors.PRODUCT_OFFLINE,
                         f"product {row['name']} is offline: its bytes cannot be downloaded now",
                         410)
    size = int(row["content_length"])
    headers = _entity_headers(row)
    if "ETag" in headers and conditional.none_match(caller.if_none_match, headers["ETag"]):
        return conditional.not_modified(headers["ETag"])
    if service.settings.download_redirect:
        _check_stored(service, row, note)
        note("redirected", range_spec=caller.range_header, details={"name": row["name"]})
        return _redirect(service, row, headers)
    try:
        wanted = parse_range(caller.range_header, size)
    except Unsatisfiable:
        note("range_not_satisfiable", range_spec=caller.range_header)
        raise errors.Refusal(
            errors.RANGE_NOT_SATISFIABLE,
            f"range {caller.range_header!r:.80} is outside the {size} bytes of the product", 416,
            {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}) from None
    stale = caller.if_range is not None and caller.if_range != headers.get("ETag")
    if wanted is not None and stale:
        wanted = None  # RFC 9110 13.1.5: the client's copy is stale, send it all
    status = 206 if wanted is not None else 200
    length = wanted.length if wanted is not None else size
    headers["Content-Length"] = str(length)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {wanted.first}-{wanted.last}/{size}"
    if head:
        _check_stored(service, row, note)
        return Response(None, status=status, headers=headers)

    slot = _take_slot(service, caller, note)
    range_spec = wanted.header() if wanted is not None else None
    try:
        body = _open(service, row, range_spec, length)
    except Unavailable as missing:
        slot.release()
        raise _unavailable(row, missing.kind, note) from None
    except BaseException:
        slot.release()
        note("failed", range_spec=range_spec)
        raise

    def finished(sent: int, outcome: str) -> None:
        slot.release()
        metrics.downloaded(outcome, sent)
        note(outcome, bytes_sent=sent, range_spec=range_spec,
              details={"name": row["name"], "status": status, "length": length})

    relay_to = caller.client_socket if (
        service.settings.download_zero_copy and length >= ZERO_COPY_MIN
        and zero_copy.available()) else None
    stream = _Stream(body, length, "partial" if wanted is not None else "completed", finished,
                     relay_to)
    return Response(stream, status=status, headers=headers, direct_passthrough=True)


class Unavailable(Exception):
    """The archive does not hold the product's bytes as catalogued."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # missing | size


def _open(service: Service, row: Mapping[str, Any], range_spec: str | None,
          length: int) -> Any:
    """The archive object's body (a botocore StreamingBody), checked against the catalogue.
    Held directly rather than through storage.open_stream's generator: a generator never
    started cannot close the connection it would have opened."""
    from botocore.exceptions import ClientError  # here: prip's cold start does without it

    args = {"Bucket": service.runtime.settings.archive_bucket, "Key": row["distribution_key"]}
    if range_spec is not None:
        args["Range"] = range_spec
    try:
        answer = service.runtime.s3.get_object(**args)
    except ClientError as error:
        if storage.is_missing(error):
            raise Unavailable("missing") from None
        if error.response.get("Error", {}).get("Code") == "InvalidRange":
            raise Unavailable("size") from None  # shorter than the catalogue says
        raise
    body = answer["Body"]
    total = _total_size(answer)
    if int(answer["ContentLength"]) != length or total != int(row["content_length"]):
        body.close()
        raise Unavailable("size")
    return body


def _total_size(answer: Mapping[str, Any]) -> int:
    """The whole object's size, from a ranged answer's Content-Range too."""
    content_range = answer.get("ContentRange")
    if content_range and "/" in content_range:
        return int(content_range.rsplit("/", 1)[1])
    return int(answer["ContentLength"])


def _check_stored(service: Service, row: Mapping[str, Any], note: Callable[..., None]) -> None:
    """What GET would find, for the answers that do not read the bytes (HEAD, redirect)."""
    info = storage.head(service.runtime.s3, service.runtime.settings.archive_bucket,
                        row["distribution_key"])
    if info is None:
        raise _unavailable(row, "missing", note)
    if info["size"] != int(row["content_length"]):
        raise _unavailable(row, "size", note)


def _unavailable(row: Mapping[str, Any], kind: str, note: Callable[..., None]) -> ODataError:
    metrics.archive_disagreement("download", kind)
    what = ("is missing from the archive" if kind == "missing"
            else "in the archive is not its catalogued size")
    log.error("product %s (%s): its object %s %s", row["name"], row["id"],
              row["distribution_key"], what)
    note("unavailable", details={"name": row["name"], "archive": kind})
    return errors.Refusal(
        errors.PRODUCT_UNAVAILABLE,
        f"the bytes of product {row['name']} are not available from the archive; the"
        " operators are told, try again later", 503, {"Retry-After": str(UNAVAILABLE_RETRY_S)})


def _entity_headers(row: Mapping[str, Any]) -> dict[str, str]:
    headers = {
        "Content-Type": row["content_type"],
        "Content-Disposition": content_disposition(row["name"]),
        "Accept-Ranges": "bytes",
        **checksum_headers(row.get("checksums")),
    }
    modified = row.get("modification_date")
    if isinstance(modified, datetime):
        headers["Last-Modified"] = http_date(modified)
    return headers


def _take_slot(service: Service, caller: Caller, note: Callable[..., None]) -> Slot:
    retry = {"Retry-After": str(RETRY_AFTER_S)}
    try:
        slot = service.slots.acquire(caller.principal.subject)
    except Busy:
        note("busy")
        raise errors.Refusal(errors.BUSY, "too many downloads in progress here; try again"
                             " shortly", 503, retry) from None
    if slot is None:
        note("quota_exceeded")
        limit = service.settings.max_parallel_downloads
        security_events.emit("auxip.quota.refused", "network", "failure", event_type="denied",
                             reason="parallel_downloads", user=caller.principal.username,
                             source_ip=caller.client_address, limit=limit)
        raise errors.Refusal(errors.TOO_MANY_DOWNLOADS,
                             f"at most {limit} parallel downloads per user", 429, retry)
    return slot


class _Stream:
    """The body iterable. Not a generator: a generator that was never started ignores
    close(), and the slot must come back even when the server never iterated.

    With a `relay_to` socket, the first chunk is what the S3 client had buffered (the
    server sends it after the headers) and the second call relays the rest by splice(2)
    straight onto that socket, then ends the iteration."""

    def __init__(self, body: Any, length: int, done: str,
                 finished: Callable[[int, str], None],
                 relay_to: socket.socket | None = None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # loaded: a body is open

        self._errors = (BotoCoreError, ClientError, OSError)
        self._body = body
        self._chunks: Iterator[bytes] | None = None
        self._relay_to = relay_to
        self._unread: storage.Unread | None = None
        self._length = length
        self._done = done
        self._finished = finished
        self._pending = 0
        self._sent = 0
        self._outcome = "aborted"  # unless the end is reached: the client went away
        self._closed = False

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> bytes:
        # The server asks for the next chunk once it wrote the last one: that one was sent.
        self._sent += self._pending
        self._pending = 0
        if self._unread is not None:
            unread, self._unread = self._unread, None
            self._relay(unread)
        try:
            chunk = self._next_chunk()
        except StopIteration:
            self._end()
            raise
        except self._errors as error:
            self._fail(error)
            raise
        self._pending = len(chunk)
        return chunk

    def _next_chunk(self) -> bytes:
        if self._chunks is None:
            if self._relay_to is not None:
                self._unread = storage.take_socket(self._body)
                if self._unread is not None:
                    return self._unread.first
            self._chunks = self._body.iter_chunks(storage.CHUNK)
        return next(self._chunks)

    def _relay(self, unread: storage.Unread) -> None:
        """The rest of the body, socket to socket; ends the iteration."""
        assert self._relay_to is not None
        relay = zero_copy.Relay(unread.sock, self._relay_to)
        try:
            relay.run(unread.left)
        except zero_copy.SourceFailed as error:
            self._sent += relay.sent
            self._fail(error)
            raise
        except BaseException:
            self._sent += relay.sent  # the client went away (or stalled): "aborted"
            self.close()
            raise
        self._sent += relay.sent
        self._end()
        raise StopIteration

    def _end(self) -> None:
        self._outcome = self._done if self._sent == self._length else "failed"
        self.close()

    def _fail(self, error: BaseException) -> None:
        self._outcome = "failed"
        log.error("archive read failed after %d bytes: %s", self._sent, error)
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._body.close()
        finally:
            self._finished(self._sent, self._outcome)


def _redirect(service: Service, row: Mapping[str, Any], headers: dict[str, str]) -> Response:
    url = service.presigner.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": service.runtime.settings.archive_bucket,
            "Key": row["distribution_key"],
            "ResponseContentDisposition": headers["Content-Disposition"],
            "ResponseContentType": row["content_type"],
        },
        ExpiresIn=service.settings.download_url_ttl_s,
    )
    kept = {k: v for k, v in headers.items()
            if k in ("ETag", "Digest") or k.startswith("X-Checksum-")}
    return Response(None, status=307, headers={"Location": url, "Cache-Control": "no-store",
                                                **kept})


def _audit(service: Service, caller: Caller, product_id: UUID, outcome: str, *,
           bytes_sent: int | None = 0, range_spec: str | None = None,
           details: dict[str, object] | None = None) -> None:
    audit.write(service.runtime.pool, AuditEntry(
        actor=audit.actor(caller.principal), action=audit.DOWNLOAD, outcome=outcome,
        product_id=product_id, client_address=caller.client_address, bytes_sent=bytes_sent,
        range_spec=range_spec[:200] if range_spec else None,
        details={"subject": caller.principal.subject, **caller.origin_details,
                 **(details or {})},
    ))
