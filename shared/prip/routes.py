"""The `/odata/v1` resources and who may use them: one request in, one response out.

    /odata/v1                               service document         catalogue
    /odata/v1/$metadata                     CSDL                     catalogue
    /odata/v1/Products                      query                    catalogue
    /odata/v1/Products/$count               count (text)             catalogue
    /odata/v1/Products(<Id>)                one product              catalogue
    /odata/v1/Products(<Id>)/Attributes     its attributes           catalogue
    /odata/v1/Products(<Id>)/$value         its bytes (GET, HEAD)    reader, query token ok
    /odata/v1/Subscriptions                 list, POST               subscriber
    /odata/v1/Subscriptions(<Id>)           GET, PATCH, PUT, DELETE  subscriber

"catalogue" needs a reader, or nobody when AUXIP_ANONYMOUS_CATALOGUE is on. Ids are
accepted bare, quoted and as `Id=...`. Entity set names and `$` segments are matched
without regard to case (OData 4.01 leniency). `$metadata` and `$value` carry an ETag and
answer `If-None-Match` naming it with `304` (conditional.py). Every refusal is an OData
error body, those of the framework before dispatch too (framework_error); an unexpected
exception is logged and answered `500` with an OData body, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from collections.abc import Callable
from uuid import UUID

import psycopg
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from shared.adapters.catalogue import products as catalogue_products
from shared.adapters.telemetry import security_events
from shared.odata import ODataError, fetch_products, parse_query_options
from shared.prip import (
    conditional,
    downloads,
    errors,
    metadata_document,
    products,
    subscriptions,
)
from shared.prip.audit import origin
from shared.prip.auth import READER, SUBSCRIBER, AuthError, Principal, require
from shared.prip.service import Service, current

log = logging.getLogger(__name__)

PREFIX = "/odata/v1"
_JSON = "application/json"
_KEYED = re.compile(r"(?i)(products|subscriptions)\((.*)\)(?:/(.*))?", re.DOTALL)
_KEY = re.compile(r"(?i)\s*(?:id\s*=\s*)?(?:guid)?'?([^']*)'?\s*")


def _outages() -> tuple[type[BaseException], ...]:
    """The errors that mean a server we depend on is down. botocore's only once it is
    loaded: none of them can be raised before, and importing it would cost every cold
    start ~0.2 s and ~10 MB (the first requests are mostly catalogue queries)."""
    found = sys.modules.get("botocore.exceptions")
    s3 = (found.EndpointConnectionError, found.ConnectTimeoutError) if found else ()
    return (psycopg.OperationalError, PoolTimeout, *s3)


def dispatch(request: Request, service_of: Callable[[], Service] = current) -> Response:
    try:
        body = _read_body(request)
        handler = _route(request.path, request.method)
        return handler(service_of(), request, body)
    except errors.Refusal as error:
        return _error(error.status, error.code, error.message, error.headers)
    except ODataError as error:
        return _error(error.status, error.code, error.message)
    except AuthError as error:
        _auth_refused(error, request)
        return _auth_error(error, service_of)
    except HTTPException as error:  # werkzeug refusing something of the request itself
        status = error.code or 400
        return _error(status, type(error).__name__, error.description or "bad request")
    except _outages() as error:
        # The catalogue or the object store is unreachable: an outage, not a bug; clients
        # should come back rather than give up.
        log.error("%s %s: %s unavailable: %s", request.method, request.path[:200],
                  "catalogue" if isinstance(error, (psycopg.OperationalError, PoolTimeout))
                  else "object store", error)
        return _error(503, errors.UNAVAILABLE, "temporarily unavailable; try again shortly",
                      {"Retry-After": "5"})
    except Exception:
        log.exception("%s %s failed", request.method, request.path[:200])
        return _error(500, errors.INTERNAL, "internal error; it has been logged")


# --- routing ---------------------------------------------------------------------------------


def _route(path: str, method: str) -> Callable[[Service, Request, bytes], Response]:
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        raise ODataError(errors.NOT_FOUND, f"no resource at {path[:100]!r}; the service root"
                                           f" is {PREFIX}", 404)
    rest = path[len(PREFIX):].strip("/")
    lower = rest.lower()
    if lower == "":
        return _only(method, ("GET",), _service_document)
    if lower == "$metadata":
        return _only(method, ("GET",), _metadata)
    if lower == "products":
        return _only(method, ("GET",), _products)
    if lower == "products/$count":
        return _only(method, ("GET",), _products_count)
    if lower == "subscriptions":
        return _only(method, ("GET", "POST"), _subscriptions)
    keyed = _KEYED.fullmatch(rest)
    if keyed is not None:
        entity_set, key_text, tail = keyed.group(1).lower(), keyed.group(2), keyed.group(3)
        key = _key(key_text)
        tail = (tail or "").lower()
        if entity_set == "products" and tail == "":
            return _only(method, ("GET",), _keyed(_product, key))
        if entity_set == "products" and tail == "$value":
            return _only(method, ("GET",), _keyed(_download, key))
        if entity_set == "products" and tail == "attributes":
            return _only(method, ("GET",), _keyed(_attributes, key))
        if entity_set == "subscriptions" and tail == "":
            return _only(method, ("GET", "PATCH", "PUT", "DELETE"), _keyed(_subscription, key))
    raise ODataError(errors.NOT_FOUND, f"no resource at {path[:100]!r}", 404)


def _only(method: str, allowed: tuple[str, ...], handler: Callable[..., Response]
          ) -> Callable[..., Response]:
    allowed_with_head = allowed + (("HEAD",) if "GET" in allowed else ())
    if method not in allowed_with_head:
        raise errors.Refusal(errors.METHOD_NOT_ALLOWED,
                             f"{method[:20]} is not allowed here; allowed: "
                             f"{', '.join(allowed_with_head)}", 405,
                             {"Allow": ", ".join(allowed_with_head)})
    return handler


def _keyed(handler: Callable[..., Response], key: UUID) -> Callable[..., Response]:
    return lambda service, request, body: handler(service, request, body, key)


def _key(text: str) -> UUID:
    match = _KEY.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        return UUID(match.group(1))
    except ValueError:
        raise ODataError(errors.INVALID_KEY,
                         f"{text[:60]!r} is not an Id (a GUID such as"
                         " 3fa85f64-5717-4562-b3fc-2c963f66afa6)") from None


# --- who may -----------------------------------------------------------------------------


def _catalogue_principal(service: Service, request: Request) -> Principal | None:
    principal = service.auth.authenticate(request.headers, request.args)
    if principal is None and service.auth.anonymous_catalogue:
        return None
    return require(principal, READER)


def _principal(service: Service, request: Request, role: str, *,
               query_token: bool = False) -> Principal:
    return require(service.auth.authenticate(request.headers, request.args,
                                             allow_query_token=query_token), role)


# --- handlers ----------------------------------------------------------------------------


def _root(service: Service, request: Request) -> str:
    """The service root as clients reach it (links must work from their side of proxies)."""
    return service.settings.prip_public_url or request.url_root.rstrip("/") + PREFIX


def _service_document(service: Service, request: Request, body: bytes) -> Response:
    _catalogue_principal(service, request)
    return _json(metadata_document.service_document())


def _metadata(service: Service, request: Request, body: bytes) -> Response:
    _catalogue_principal(service, request)
    etag = metadata_document.CSDL_ETAG
    if conditional.none_match(request.headers.get("If-None-Match"), etag):
        return conditional.not_modified(etag)
    return Response(metadata_document.CSDL, status=200, mimetype="application/xml",
                    headers={"OData-Version": "4.0", "ETag": etag})


def _products(service: Service, request: Request, body: bytes) -> Response:
    _catalogue_principal(service, request)
    options = parse_query_options(request.args)
    with service.runtime.pool.connection() as conn:
        page = fetch_products(conn, options)
    link = None
    if page.has_more and options.top > 0:  # $top=0 asks for the count alone: no pages
        link = products.next_link(f"{_root(service, request)}/Products",
                                  list(request.args.items(multi=True)), options)
    return _json_text(products.collection_text(page.rows, options, count=page.count,
                                               next_link=link))


def _products_count(service: Service, request: Request, body: bytes) -> Response:
    _catalogue_principal(service, request)
    options = dataclasses.replace(parse_query_options(request.args), count=True, top=0, skip=0)
    with service.runtime.pool.connection() as conn:
        page = fetch_products(conn, options)
    return Response(str(page.count), status=200, mimetype="text/plain",
                    headers={"OData-Version": "4.0"})


def _published(service: Service, key: UUID) -> dict | None:
    with service.runtime.pool.connection() as conn:
        row = catalogue_products.get(conn, key)
    return row if row is not None and row["status"] == "published" else None


def _product(service: Service, request: Request, body: bytes, key: UUID) -> Response:
    _catalogue_principal(service, request)
    options = parse_query_options(request.args)
    row = _published(service, key)
    if row is None:
        raise errors.not_found("product")
    return _json(products.entity(row, options))


def _attributes(service: Service, request: Request, body: bytes, key: UUID) -> Response:
    _catalogue_principal(service, request)
    row = _published(service, key)
    if row is None:
        raise errors.not_found("product")
    return _json(products.attributes(row, str(key)))


def _download(service: Service, request: Request, body: bytes, key: UUID) -> Response:
    principal = _principal(service, request, READER, query_token=True)
    address, details = origin(request.remote_addr, request.headers)
    caller = downloads.Caller(
        principal=principal, method=request.method, range_header=request.headers.get("Range"),
        if_range=request.headers.get("If-Range"), client_address=address,
        origin_details=details, if_none_match=request.headers.get("If-None-Match"),
        client_socket=downloads.writable_socket(request.environ),
    )
    return downloads.serve(service, caller, key, _published(service, key))


def _subscriptions(service: Service, request: Request, body: bytes) -> Response:
    principal = _principal(service, request, SUBSCRIBER)
    pool = service.runtime.pool
    if request.method == "POST":
        created = subscriptions.create(
            pool, principal, body, request.remote_addr,
            max_per_user=service.settings.max_subscriptions_per_user,
            secret_keys=service.runtime.settings.secret_keys)
        location = f"{_root(service, request)}/Subscriptions({created['Id']})"
        return _json(created, 201, {"Location": location})
    return _json(subscriptions.listing(pool, principal, list(request.args.items(multi=True))))


def _subscription(service: Service, request: Request, body: bytes, key: UUID) -> Response:
    principal = _principal(service, request, SUBSCRIBER)
    pool = service.runtime.pool
    if request.method in ("GET", "HEAD"):
        return _json(subscriptions.get(pool, principal, key))
    if request.method == "DELETE":
        subscriptions.delete(pool, principal, key, request.remote_addr)
        return Response(None, status=204, headers={"OData-Version": "4.0"})
    return _json(subscriptions.change_status(pool, principal, key, body, request.remote_addr))


# --- bodies and responses ------------------------------------------------------------------


def _read_body(request: Request) -> bytes:
    """At most MAX_BODY_BYTES of the body; 413 past it, before anything else is done, so a
    huge body is never held in memory (nor read to its end: the connection is closed)."""
    limit = subscriptions.MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge()
    pieces: list[bytes] = []
    total = 0
    while total <= limit:
        piece = request.stream.read(limit + 1 - total)
        if not piece:
            break
        pieces.append(piece)
        total += len(piece)
    if total > limit:
        raise _TooLarge()
    return b"".join(pieces)


class _TooLarge(errors.Refusal):
    def __init__(self) -> None:
        super().__init__(errors.BODY_TOO_LARGE,
                         f"request bodies are limited to {subscriptions.MAX_BODY_BYTES} bytes",
                         413, {"Connection": "close"})


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _json_text(products.encode(body), status, headers)


def _json_text(text: str, status: int = 200, headers: dict[str, str] | None = None
               ) -> Response:
    return Response(text, status=status, mimetype=_JSON,
                    headers={"OData-Version": "4.0", **(headers or {})})


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(errors.body(code, message), ensure_ascii=False).encode()
    all_headers = {"OData-Version": "4.0", **(headers or {})}
    if all_headers.get("Connection") == "close":
        # Streamed, so that functions-framework does not read the rest of the body first.
        all_headers["Content-Length"] = str(len(payload))
        return Response(iter([payload]), status=status, mimetype=_JSON, headers=all_headers)
    return Response(payload, status=status, mimetype=_JSON, headers=all_headers)


def framework_error(error: HTTPException) -> Response:
    """What the framework itself refuses before dispatch (functions-framework answers
    /robots.txt and /favicon.ico with 404; Flask may refuse a request it cannot parse), as an
    OData error like every other refusal."""
    status = error.code or 500
    code = {404: errors.NOT_FOUND, 405: errors.METHOD_NOT_ALLOWED}.get(status,
                                                                      type(error).__name__)
    kept = {k: v for k, v in error.get_headers() if k in ("Allow", "Retry-After")}
    message = f"no resource here; the service root is {PREFIX}" if status == 404 else (
        error.description or "refused")
    return _error(status, code, message, kept)


def _auth_refused(error: AuthError, request: Request) -> None:
    """The security event of a refusal: 401 (which credentials, why) or 403 (which role)."""
    where = {"source_ip": request.remote_addr, "user": error.user, "reason": error.reason,
             "http_method": request.method, "url_path": request.path[:200]}
    if error.status == 403:
        security_events.emit("auxip.role.denied", "iam", "failure", event_type="info", **where)
    elif error.status == 401:
        scheme = (request.headers.get("Authorization") or "").strip().partition(" ")[0].lower()
        bearer = scheme == "bearer" or (not scheme and bool(request.args.get("token")))
        security_events.emit("auxip.token.refused" if bearer else "auxip.login.refused",
                             "authentication", "failure", **where)


def _auth_error(error: AuthError, service_of: Callable[[], Service]) -> Response:
    headers: dict[str, str] = {}
    if error.status in (401, 403):
        headers.update(service_of().auth.challenge(error))
    if error.status == 503:
        headers["Retry-After"] = "5"
    return _error(error.status, error.code, error.message, headers)
