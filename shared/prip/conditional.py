"""Conditional requests (RFC 9110 13.1.2, 15.4.5): a GET or HEAD whose `If-None-Match`
names the ETag the response would carry is answered `304 Not Modified`, with that ETag and
no body. Clients that keep `$metadata` or a product's bytes check them so without fetching
them again; a download answered 304 takes no download slot and moves no byte."""

from __future__ import annotations

import hashlib

from werkzeug.http import parse_etags, unquote_etag
from werkzeug.wrappers import Response


def strong_etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as the RFC asks for this
    header; `*` names any)."""
    if if_none_match is None:
        return False
    opaque, _ = unquote_etag(etag)
    return parse_etags(if_none_match).contains_weak(opaque)


def not_modified(etag: str) -> Response:
    return Response(None, status=304, headers={"ETag": etag, "OData-Version": "4.0"})
