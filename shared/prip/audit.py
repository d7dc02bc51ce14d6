"""What prip writes to the audit trail, and how: who (the principal's username, its
subject in the details), from where, what, how it ended. Never a token, a password or
the userinfo part of a URL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from psycopg_pool import ConnectionPool

from shared.adapters.catalogue.audit import AuditEntry, record
from shared.prip.auth import Principal

log = logging.getLogger(__name__)

DOWNLOAD = "download"
SUBSCRIPTION_CREATE = "subscription.create"
SUBSCRIPTION_UPDATE = "subscription.update"
SUBSCRIPTION_DELETE = "subscription.delete"

_MAX_FORWARDED_CHARS = 200


def actor(principal: Principal | None) -> str:
    return principal.username if principal is not None else "anonymous"


def origin(remote_addr: str | None, headers: Mapping[str, str]) -> tuple[str | None, dict]:
    """The peer address, plus what proxies said of the client in the details: the header is
    the client's to write, so it is kept as a claim, apart from the address we saw."""
    forwarded = headers.get("X-Forwarded-For")
    details = {"forwarded_for": forwarded[:_MAX_FORWARDED_CHARS]} if forwarded else {}
    return remote_addr, details


def without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "(unparsable URL)"


def write(pool: ConnectionPool, entry: AuditEntry) -> None:
    """Record after the fact (a finished download): a failure is logged, not raised, since
    the bytes are gone already and the client must not see a server fault for it."""
    try:
        with pool.connection() as conn:
            record(conn, entry)
    except Exception:
        log.exception("audit entry lost: %s %s %s by %s", entry.action, entry.outcome,
                      entry.product_id, entry.actor)
