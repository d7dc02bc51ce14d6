"""The outbox: an event is journalled in the same transaction as the change it announces,
and sent to the broker only after that transaction commits.

A crash between commit and send loses nothing: `send_pending` finds journal rows that were
never sent and sends them (every function runs it after its own work; `auxip replay` and the
evict PingSource run it too). Receivers are idempotent, so a row sent twice does no harm.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache

import httpx
import psycopg
from psycopg.rows import dict_row
from cloudevents.http import CloudEvent
from psycopg_pool import ConnectionPool

from events.bindings import to_http_binary
from events.types import PRODUCT_INGESTED, PRODUCT_PACKAGED
from shared.catalogue import dead_letters

log = logging.getLogger(__name__)

_CORE = {"id", "type", "source", "subject", "time", "specversion", "datacontenttype",
         "dataschema"}


def record(conn: psycopg.Connection, event: CloudEvent) -> bool:
    """Journal `event` in the caller's transaction; False if that id is journalled already."""
    attrs = event.get_attributes()
    extensions = {k: v for k, v in attrs.items() if k not in _CORE}
    row = conn.execute(
        "INSERT INTO event_journal (id, type, source, subject, time, data, extensions)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
        (attrs["id"], attrs["type"], attrs["source"], attrs.get("subject"),
         attrs.get("time") or datetime.now(UTC).isoformat(),
         json.dumps(event.data), json.dumps(extensions)),
    ).fetchone()
    return row is not None


def event_from_row(row: dict) -> CloudEvent:
    attributes = {
        "id": row["id"], "type": row["type"], "source": row["source"],
        "time": row["time"].isoformat(), "datacontenttype": "application/json",
        "dataschema": f"urn:auxip:schema:{row['type']}",
    }
    if row["subject"]:
        attributes["subject"] = row["subject"]
    attributes.update(row["extensions"] or {})
    return CloudEvent(attributes, row["data"])


def send(conn: psycopg.Connection, broker_url: str | None, event_ids: Iterable[str]) -> int:
    """Send the journalled events `event_ids` (after their commit) over the caller's own
    connection, so a step never needs a second one from the pool; returns how many went."""
    ids = list(event_ids)
    if not ids or not broker_url:
        return 0
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM event_journal WHERE id = ANY(%s) AND sent_at IS NULL"
        " ORDER BY recorded_at", (ids,),
    ).fetchall()
    return len(_post_rows_locked(conn, broker_url, rows))


def send_pending(pool: ConnectionPool, broker_url: str | None, *, older_than_s: float = 5.0,
                 limit: int = 200) -> int:
    """Send journal rows left unsent for `older_than_s` (a crash, a broker that was down)."""
    if not broker_url:
        return 0
    with pool.connection() as conn, conn.transaction():
        # SKIP LOCKED: several processes sweep at once; each row goes to one of them.
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT * FROM event_journal WHERE sent_at IS NULL"
            " AND recorded_at < clock_timestamp() - make_interval(secs => %s)"
            # Least tried first: rows that keep failing cannot fill every sweep's window.
            " ORDER BY send_attempts, recorded_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (older_than_s, limit),
        ).fetchall()
        sent = _post_rows_locked(conn, broker_url, rows)
    return len(sent)


def resend_stalled(pool: ConnectionPool, broker_url: str | None, *, after_s: float,
                   max_resends: int, limit: int = 100) -> list[dict]:
    """Send again the event that should move a product stalled in `ingested` or `packaged`
    for `after_s`: its consumer failed past the Broker's retries (a function down for
    minutes) and the event sits in the dead letters. Handlers are idempotent, so a resend
    that crosses a late success changes nothing. Each event is resent at most
    `max_resends` times, waiting `after_s` doubled after each: a product whose step keeps
    failing is left to the dead letters and its operators, not resent for ever."""
    if not broker_url or max_resends < 1:
        return []
    with pool.connection() as conn, conn.transaction():
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT j.* FROM products p JOIN event_journal j"
            " ON j.data ? 'product_id' AND j.data ->> 'product_id' = p.id::text"
            " AND j.type = CASE p.status WHEN 'ingested' THEN %(ingested)s ELSE %(packaged)s END"
            " WHERE p.status IN ('ingested', 'packaged')"
            " AND p.modification_date < clock_timestamp() - make_interval(secs => %(after)s)"
            # Unsent rows are send_pending's; a sent row was sent once plus its resends.
            " AND j.sent_at IS NOT NULL AND j.send_attempts <= %(resends)s"
            " AND j.sent_at < clock_timestamp()"
            "     - make_interval(secs => %(after)s * power(2, j.send_attempts - 1))"
            " ORDER BY p.modification_date LIMIT %(limit)s FOR UPDATE OF j SKIP LOCKED",
            {"ingested": PRODUCT_INGESTED, "packaged": PRODUCT_PACKAGED, "after": after_s,
             "resends": max_resends, "limit": limit},
        ).fetchall()
        for row in rows:
            log.warning("product %s stalled after %s: event %s sent again (resend %d of %d)",
                        row["data"].get("logical_name") or row["subject"], row["type"],
                        row["id"], row["send_attempts"], max_resends)
        # Only what reached the broker leaves the dead letters; a failed resend still
        # counts against the limit (a broker down for long is send_pending's business).
        dead_letters.mark_replayed(conn, _post_rows_locked(conn, broker_url, rows))
    return rows


def _post_rows_locked(conn: psycopg.Connection, broker_url: str, rows: list[dict]) -> list[str]:
    """Post each row; returns the ids the broker accepted."""
    sent: list[str] = []
    for row in rows:
        try:
            event = event_from_row(row)
        except Exception as failure:  # one unbuildable row must not stop the rows after it
            error: str | None = f"cannot build the event: {type(failure).__name__}: {failure}"
        else:
            error = _post(broker_url, event)
        if error is None:
            conn.execute("UPDATE event_journal SET sent_at = clock_timestamp(),"
                         " send_attempts = send_attempts + 1 WHERE id = %s", (row["id"],))
            sent.append(row["id"])
        else:
            log.warning("event %s not sent to broker: %s", row["id"], error)
            conn.execute("UPDATE event_journal SET send_attempts = send_attempts + 1,"
                         " last_error = %s WHERE id = %s", (error, row["id"]))
    return sent


def _post(broker_url: str, event: CloudEvent) -> str | None:
    try:
        headers, body = to_http_binary(event)
    except Exception as failure:  # the SDK's own errors, or a TypeError on a bad extension
        return f"cannot encode the event: {type(failure).__name__}: {failure}"
    try:
        response = _client().post(broker_url, headers=headers, content=body)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    if response.status_code >= 300:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return None


@cache
def _client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0),
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
