"""Operators' replay: journalled events (the `event_journal` outbox) and dead letters, sent
again to the broker or straight to one function.

Handlers are idempotent (derived ids, `ON CONFLICT DO NOTHING`, status guards), so a replay
duplicates nothing: it re-does only the work that is missing. Events go out exactly as they
were journalled: same id, same data, same `traceparent`, so the work a replay causes shows
up in the original trace.

Order: rows are sent one at a time in the order they were journalled. A function answers
once its work is done, so a replay to a function is sequential end to end; the broker
answers on acceptance (202) and dispatches later, so when one stage depends on another
(`product.ingested` needs the row ingest writes), replay the stages one after the other.

The journal itself is only read: `sent_at` stays what the outbox made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import httpx
import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row

from events.bindings import from_json, to_http_binary
from shared.adapters.catalogue import dead_letters as dead_letter_rows
from shared.adapters.outbox import event_from_row
from shared.adapters.settings import Settings

BROKER = "broker"
# Extensions the router (or Knative) adds to a dead-lettered event: not part of the event.
_DEAD_LETTER_EXTENSIONS = (dead_letter_rows.DESTINATION, dead_letter_rows.CODE,
                           dead_letter_rows.DATA, dead_letter_rows.ATTEMPTS)


class ReplayError(ValueError):
    """A selection or target that cannot be replayed (a message for the operator)."""


@dataclass(frozen=True)
class Selection:
    """Which journal rows: every given criterion must hold (none given: refused, so an
    operator never replays the whole journal by accident; `everything` says it on purpose)."""

    ids: Sequence[str] = ()
    types: Sequence[str] = ()
    products: Sequence[str] = ()  # product names, as in the subjects of its events
    since: datetime | None = None  # event time, inclusive
    until: datetime | None = None  # event time, exclusive
    unsent: bool = False  # only rows the outbox never sent
    everything: bool = False
    limit: int = 100_000
    newest: bool = False  # the last `limit` rows rather than the first (still returned in order)

    def is_empty(self) -> bool:
        return not (self.ids or self.types or self.products or self.since or self.until
                    or self.unsent)


@dataclass(frozen=True)
class Sent:
    event_id: str
    type: str
    subject: str | None
    status: int | None = None  # HTTP status; None: not sent (dry run) or no answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 300


@dataclass
class Report:
    target: str
    dry_run: bool
    sent: list[Sent] = field(default_factory=list)

    @property
    def failed(self) -> list[Sent]:
        return [s for s in self.sent if not self.dry_run and not s.ok]


def resolve_target(settings: Settings, to: str | None,
                   function_url: Callable[[str], str | None] = lambda name: None) -> str:
    """`broker` (default: AUXIP_BROKER_URL / K_SINK), an http(s) URL, or the Service name of
    a function, which `function_url` turns into its URL (None: not known here)."""
    if to is None or to == BROKER:
        if not settings.broker_url:
            raise ReplayError("no broker: set AUXIP_BROKER_URL (or K_SINK), or give a URL")
        return settings.broker_url
    if to.startswith(("http://", "https://")):
        return to
    url = function_url(to)
    if url is None:
        raise ReplayError(f"{to!r} is neither 'broker', a URL nor a function known here (set"
                          " AUXIP_FUNCTION_URL_TEMPLATE, e.g."
                          " http://{name}.auxip.svc.cluster.local)")
    return url


def logical_name(product: str) -> str:
    """The name a product's events share: `X.SAFE.zip` and `X.EOF.zip` are `X.SAFE`, `X.EOF`."""
    for suffix in (".zip", ".tgz"):
        if product.endswith(suffix) and "." in product[: -len(suffix)]:
            return product[: -len(suffix)]
    return product


def journal_rows(conn: psycopg.Connection, selection: Selection) -> list[dict]:
    """The selected journal rows, in the order they were journalled."""
    if selection.is_empty() and not selection.everything:
        raise ReplayError("nothing selected: give ids, types, products or a time range")
    names = [logical_name(p) for p in selection.products]
    # A product's events have its inbox key (`X.SAFE/manifest.safe`, `in/X.EOF`), its
    # logical name or its distribution name (`X.SAFE.zip`) as subject.
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM event_journal j"
        " WHERE (cardinality(%(ids)s::text[]) = 0 OR j.id = ANY(%(ids)s))"
        " AND (cardinality(%(types)s::text[]) = 0 OR j.type = ANY(%(types)s))"
        " AND (%(since)s::timestamptz IS NULL OR j.time >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR j.time < %(until)s)"
        " AND (NOT %(unsent)s OR j.sent_at IS NULL)"
        " AND (cardinality(%(names)s::text[]) = 0 OR EXISTS ("
        "   SELECT 1 FROM unnest(%(names)s::text[]) n"
        "   WHERE j.subject = n OR starts_with(j.subject, n || '.')"
        "   OR starts_with(j.subject, n || '/') OR strpos(j.subject, '/' || n) > 0))"
        " ORDER BY " + ("j.recorded_at DESC, j.id DESC" if selection.newest
                        else "j.recorded_at, j.id")  # nosec B608  # a constant order
        + " LIMIT %(limit)s",
        {"ids": list(selection.ids), "types": list(selection.types), "names": names,
         "since": selection.since, "until": selection.until, "unsent": selection.unsent,
         "limit": selection.limit},
    ).fetchall()
    return rows[::-1] if selection.newest else rows


def replay(conn: psycopg.Connection, selection: Selection, target: str, *,
           dry_run: bool = False, on_sent: Callable[[Sent], None] | None = None,
           timeout_s: float = 330.0) -> Report:
    """Send the selected journal rows to `target` (a URL: see `resolve_target`), in order."""
    rows = journal_rows(conn, selection)
    events = [event_from_row(row) for row in rows]
    return send_events(events, target, dry_run=dry_run, on_sent=on_sent, timeout_s=timeout_s)


def send_events(events: Iterable[CloudEvent], target: str, *, dry_run: bool = False,
                on_sent: Callable[[Sent], None] | None = None,
                timeout_s: float = 330.0) -> Report:
    report = Report(target=target, dry_run=dry_run)
    for event in events:
        outcome = _describe(event) if dry_run else post(target, event, timeout_s)
        report.sent.append(outcome)
        if on_sent:
            on_sent(outcome)
    return report


def post(url: str, event: CloudEvent, timeout_s: float = 330.0) -> Sent:
    """One event, HTTP binary mode, as the broker delivers it."""
    headers, body = to_http_binary(event)
    try:
        response = _client().post(url, headers=headers, content=body, timeout=timeout_s)
    except httpx.HTTPError as error:
        return _describe(event, error=f"{type(error).__name__}: {error}")
    error = None if response.status_code < 300 else response.text[:300]
    return _describe(event, status=response.status_code, error=error)


# Dead letters ------------------------------------------------------------------------------
# (the queries could join shared/adapters/catalogue/dead_letters.py; they serve only this module)


def dead_letters(conn: psycopg.Connection, *, include_replayed: bool = False,
                 event_type: str | None = None, limit: int = 100) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM dead_letters WHERE (%(all)s OR replayed_at IS NULL)"
        " AND (%(type)s::text IS NULL OR type = %(type)s) ORDER BY id LIMIT %(limit)s",
        {"all": include_replayed, "type": event_type, "limit": limit},
    ).fetchall()


def dead_letter(conn: psycopg.Connection, dead_letter_id: int) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM dead_letters WHERE id = %s", (dead_letter_id,)).fetchone()


def original_event(row: dict) -> CloudEvent:
    """The event as it was before the broker dead-lettered it (no knativeerror*)."""
    document = {k: v for k, v in row["event"].items() if k not in _DEAD_LETTER_EXTENSIONS}
    return from_json(document)


def replay_dead_letters(conn: psycopg.Connection, ids: Sequence[int], settings: Settings,
                        to: str | None = None, *, dry_run: bool = False,
                        on_sent: Callable[[Sent], None] | None = None,
                        function_url: Callable[[str], str | None] = lambda name: None,
                        ) -> Report:
    """Send dead letters again: to `to` when given, else to the subscriber that failed
    (only it missed the event; the broker would hand it to every Trigger again). Each one
    that is accepted is stamped `replayed_at`, so it leaves `deadletters list`."""
    rows = [row for i in ids if (row := dead_letter(conn, i)) is not None]
    missing = sorted(set(ids) - {row["id"] for row in rows})
    if missing:
        raise ReplayError(f"no dead letter {', '.join(map(str, missing))}")
    explicit = resolve_target(settings, to, function_url) if to else None
    report = Report(target=explicit or "subscriber", dry_run=dry_run)
    for row in rows:
        target = explicit or row["subscriber"] or resolve_target(settings, BROKER)
        event = original_event(row)
        outcome = _describe(event) if dry_run else post(target, event)
        if outcome.ok:
            conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = %s",
                         (row["id"],))
        report.sent.append(outcome)
        if on_sent:
            on_sent(outcome)
    return report


def purge_dead_letters(conn: psycopg.Connection, *, ids: Sequence[int] = (),
                       replayed: bool = False, before: datetime | None = None) -> int:
    """Delete dead letters: these ids, or the replayed ones, or those received before a
    date (criteria combine with AND); with none given nothing is deleted."""
    if not (ids or replayed or before):
        raise ReplayError("purge what? give ids, --replayed or --before")
    cursor = conn.execute(
        "DELETE FROM dead_letters WHERE (cardinality(%(ids)s::bigint[]) = 0 OR id = ANY(%(ids)s))"
        " AND (NOT %(replayed)s OR replayed_at IS NOT NULL)"
        " AND (%(before)s::timestamptz IS NULL OR received_at < %(before)s)",
        {"ids": list(ids), "replayed": replayed, "before": before},
    )
    return cursor.rowcount


def _describe(event: CloudEvent, *, status: int | None = None, error: str | None = None) -> Sent:
    return Sent(event["id"], event["type"], event.get("subject"), status, error)


@cache
def _client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(330.0, connect=5.0))
