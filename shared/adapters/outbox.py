"""The outbox: an event is journalled in the same transaction as the change it announces,
and sent to the broker only after that transaction commits.

A crash between commit and send loses nothing: `send_pending` finds journal rows that were
never sent and sends them (every function runs it after its own work; `auxip replay` and the
evict PingSource run it too). Receivers are idempotent, so a row sent twice does no harm.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import httpx
import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from events.bindings import to_http_binary

log = logging.getLogger(__name__)

_CORE = {"id", "type", "source", "subject", "time", "specversion", "datacontenttype",
         "dataschema"}


def record(conn: psycopg.Connection, event: CloudEvent) -> bool:
    """Journal `event` in the caller's transaction; False if that id is journalled already."""
    return event["id"] in record_all(conn, [event])


def record_all(conn: psycopg.Connection, events: Sequence[CloudEvent]) -> set[str]:
    """Journal `events` with one statement (atomic by itself, or part of the caller's
    transaction); the ids that were not journalled already."""
    values, params = _journal_values(events)
    if not params:
        return set()
    rows = conn.execute(
        f"INSERT INTO event_journal ({_COLUMNS}) {values}"  # nosec B608  # placeholders only
        " ON CONFLICT (id) DO NOTHING RETURNING id", params,
    ).fetchall()
    return {row[0] for row in rows}


def record_with(conn: psycopg.Connection, change: str, change_params: Sequence[object],
                events: Sequence[CloudEvent]) -> set[str] | None:
    """Run `change` (an INSERT or UPDATE ... RETURNING) and journal `events` only if it
    returned a row, in one statement: atomic without a transaction around it (a BEGIN,
    a COMMIT and a round trip fewer than `record` in a transaction). None when `change`
    returned nothing, else the ids journalled for the first time."""
    values, params = _journal_values(events)
    row = conn.execute(
        f"WITH changed AS ({change}), journalled AS ("  # nosec B608  # our statements only
        f" INSERT INTO event_journal ({_COLUMNS}) {values}"
        " AND EXISTS (SELECT 1 FROM changed) ON CONFLICT (id) DO NOTHING RETURNING id)"
        " SELECT EXISTS (SELECT 1 FROM changed), ARRAY(SELECT id FROM journalled)",
        [*change_params, *params],
    ).fetchone()
    assert row is not None
    return set(row[1]) if row[0] else None


_COLUMNS = "id, type, source, subject, time, data, extensions"


def _journal_values(events: Sequence[CloudEvent]) -> tuple[str, list[object]]:
    """`SELECT ... WHERE true` over the journal rows of `events` (each id once), and its
    parameters: a SELECT rather than VALUES, so that a caller may add a condition."""
    unique = list({event["id"]: event for event in events}.values())
    if not unique:
        return ("SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz,"
                " NULL::jsonb, NULL::jsonb WHERE false", [])
    params: list[object] = []
    for event in unique:
        attrs = event.get_attributes()
        extensions = {k: v for k, v in attrs.items() if k not in _CORE}
        params += [attrs["id"], attrs["type"], attrs["source"], attrs.get("subject"),
                   attrs.get("time") or datetime.now(UTC).isoformat(),
                   json.dumps(event.data), json.dumps(extensions)]
    rows = ", ".join(["(%s, %s, %s, %s, %s::timestamptz, %s::jsonb, %s::jsonb)"] * len(unique))
    return (f"SELECT * FROM (VALUES {rows}) AS v({_COLUMNS}) WHERE true",  # nosec B608  # placeholders only
            params)


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
    return len(post_rows(conn, broker_url, rows))


def send_recorded(conn: psycopg.Connection, broker_url: str | None,
                  events: Iterable[CloudEvent]) -> int:
    """Send events this step has just journalled (`record` said True) and committed, as
    they are in memory: the same event `send` would rebuild from the journal row, without
    reading the row back. Returns how many the broker accepted."""
    sent: list[str] = []
    for event in events if broker_url else ():
        error = _post(broker_url, event)  # type: ignore[arg-type]
        if error is None:
            sent.append(event["id"])
        else:
            _mark_failed(conn, event["id"], error)
    _mark_sent(conn, sent)
    return len(sent)


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
        sent = post_rows(conn, broker_url, rows)
    return len(sent)


def post_rows(conn: psycopg.Connection, broker_url: str, rows: list[dict]) -> list[str]:
    """Post each journal row (locked by the caller's transaction) and record the outcome;
    returns the ids the broker accepted."""
    sent: list[str] = []
    for row in rows:
        try:
            event = event_from_row(row)
        except Exception as failure:  # one unbuildable row must not stop the rows after it
            error: str | None = f"cannot build the event: {type(failure).__name__}: {failure}"
        else:
            error = _post(broker_url, event)
        if error is None:
            sent.append(row["id"])
        else:
            _mark_failed(conn, row["id"], error)
    _mark_sent(conn, sent)
    return sent


def _mark_sent(conn: psycopg.Connection, event_ids: list[str]) -> None:
    """Record that the broker took these events: one statement for all of a step's."""
    if event_ids:
        conn.execute("UPDATE event_journal SET sent_at = clock_timestamp(),"
                     " send_attempts = send_attempts + 1 WHERE id = ANY(%s)", (event_ids,))


def _mark_failed(conn: psycopg.Connection, event_id: str, error: str) -> None:
    """Record a send the broker did not take on its journal row."""
    log.warning("event %s not sent to broker: %s", event_id, error)
    conn.execute("UPDATE event_journal SET send_attempts = send_attempts + 1,"
                 " last_error = %s WHERE id = %s", (error, event_id))


def _post(broker_url: str, event: CloudEvent) -> str | None:
    try:
        headers, body = to_http_binary(event)
    except Exception as failure:  # the SDK's own errors, or a TypeError on a bad extension
        return f"cannot encode the event: {type(failure).__name__}: {failure}"
    try:
        request = httpx.Request("POST", broker_url, headers=headers, content=body,
                                extensions={"timeout": _TIMEOUT})
        response = _transport(broker_url).handle_request(request)
        try:
            response.read()
        finally:
            response.close()
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return f"{type(error).__name__}: {error}"
    if response.status_code >= 300:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return None


_TIMEOUT = {"connect": 2.0, "read": 10.0, "write": 10.0, "pool": 10.0}


@cache
def _transport(broker_url: str) -> httpx.BaseTransport:
    """A keep-alive pool to the broker. A bare transport, not an httpx.Client: the client's
    per-request work (URL merging, cookies, auth, hooks) costs more CPU than the POST to a
    broker on the same network; the proxy the environment names for that URL is kept."""
    proxy = _environment_proxy(broker_url)
    return httpx.HTTPTransport(proxy=proxy, verify=_tls(broker_url, proxy), limits=httpx.Limits(
        max_connections=32, max_keepalive_connections=16))


def _tls(broker_url: str, proxy: str | None) -> ssl.SSLContext | bool:
    """True (httpx's default: the CA bundle) when a TLS connection may be made. Knative's
    broker ingress is plain HTTP in the cluster: no TLS then, and a context without a CA
    (any TLS handshake fails: fail closed) spares each function's first event loading the
    bundle, ~45 ms of CPU and 0.5 MB."""
    if any(urlsplit(url).scheme != "http" for url in (broker_url, proxy) if url):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _environment_proxy(url: str) -> str | None:
    parts = urlsplit(url)
    if proxy_bypass_environment(parts.hostname or ""):
        return None
    proxies = getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all")
