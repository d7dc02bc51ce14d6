"""What the pipeline must look like once a batch has gone through, whatever happened on
the way: every product published exactly once, nothing orphaned, nothing forgotten.

`settle` waits for the batch, running the ingest sweep (what the minute PingSource does)
whenever progress stalls: the sweep re-sends journal rows whose send failed and announces
inbox objects whose storage notification was lost.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

import httpx
import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row

from devstack.stack.up import StackInfo
from events import bindings, types
from shared.adapters import storage
from shared.adapters.settings import Settings

STAGES = (types.PRODUCT_INGESTED, types.PRODUCT_PACKAGED, types.PRODUCT_PUBLISHED)


_sessions: dict[str, psycopg.Connection] = {}


def session(settings: Settings) -> psycopg.Connection:
    """The test's own session, held for the whole run: polling must not open a connection
    each time on a server other stacks share (it may be full just then), and a fault that
    cuts every other session spares this one."""
    conn = _sessions.get(settings.database_url)
    if conn is None or conn.closed or conn.broken:
        conn = psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row)
        _sessions[settings.database_url] = conn
    return conn


def close_sessions() -> None:
    while _sessions:
        _sessions.popitem()[1].close()


def query(settings: Settings, sql: str, *params: object) -> list[dict]:
    return session(settings).execute(sql, params).fetchall()


def wait_until(what: str, done: Callable[[], bool], timeout_s: float = 90.0,
               report: Callable[[], Any] | None = None, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}: {report() if report else ''}")


def sweep(info: StackInfo, attempts: int = 4) -> None:
    """What the ingest PingSource does every minute, retried as its delivery is: after a
    database restart a function's first requests may meet a pooled session that is gone."""
    event = CloudEvent({"type": types.PING,
                        "source": "/apis/v1/namespaces/auxip/pingsources/ingest-sweep"},
                       {"sweep": "folders"})
    headers, body = bindings.to_http_binary(event)
    for attempt in range(attempts):
        answer = httpx.post(info.layout.function_url("ingest") + "/", headers=headers,
                            content=body, timeout=120)
        if answer.status_code < 300:
            return
        time.sleep(0.5 * 2 ** attempt)
    raise AssertionError(f"the sweep failed {attempts} times: {answer.text[:300]}")


def published_count(settings: Settings, names: Collection[str]) -> int:
    return query(settings, "SELECT count(*) AS n FROM products WHERE status = 'published'"
                           " AND logical_name = ANY(%s)", list(names))[0]["n"]


def sweeping_until(info: StackInfo, what: str, progress: Callable[[], Any],
                   done: Callable[[Any], bool], timeout_s: float, stall_s: float = 15.0,
                   on_stall: Callable[[], object] | None = None) -> float:
    """Wait until `done(progress())`; returns the seconds it took. Runs the sweep each time
    `progress()` did not change for `stall_s`, as the minute PingSource would, and then
    `on_stall` (what an operator would do) if given."""
    began = time.monotonic()
    deadline = began + timeout_s
    seen, moved_at = progress(), began
    while not done(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s} s, {what}: not yet ({seen}); "
                                 f"{describe(info.settings)}")
        time.sleep(1.0)
        now = progress()
        if now != seen:
            seen, moved_at = now, time.monotonic()
        elif time.monotonic() - moved_at > stall_s:
            sweep(info)
            if on_stall is not None:
                on_stall()
            moved_at = time.monotonic()
    return time.monotonic() - began


def settle(info: StackInfo, names: Collection[str], timeout_s: float,
           on_stall: Callable[[], object] | None = None) -> float:
    """Wait until every product of `names` is published and the inbox is empty."""
    s = info.settings
    s3 = storage.client(s)

    def progress() -> tuple[int, int]:
        return (published_count(s, names),
                sum(1 for _ in storage.list_keys(s3, s.inbox_bucket)))

    return sweeping_until(info, f"{len(names)} products published, inbox empty", progress,
                          lambda seen: seen == (len(names), 0), timeout_s,
                          on_stall=on_stall)


def describe(settings: Settings) -> dict:
    """A summary for failure messages."""
    return {
        "status": query(settings, "SELECT status, count(*) FROM products GROUP BY 1"),
        "unsent": query(settings, "SELECT type, count(*), max(last_error) AS error"
                                  " FROM event_journal WHERE sent_at IS NULL GROUP BY 1"),
        "dead_letters": query(settings, "SELECT type, subscriber, error FROM dead_letters"
                                        " LIMIT 5"),
        "rejections": query(settings, "SELECT name, reason, detail FROM rejections LIMIT 5"),
    }


def assert_published_exactly_once(settings: Settings, names: Collection[str]) -> None:
    rows = query(settings, "SELECT logical_name, status, online FROM products"
                           " WHERE logical_name = ANY(%s)", list(names))
    assert sorted(r["logical_name"] for r in rows) == sorted(names)
    assert {(r["status"], r["online"]) for r in rows} == {("published", True)}
    for stage in STAGES:  # one event per product and stage, however often it was delivered
        per_subject = Counter(r["subject"] for r in query(
            settings, "SELECT subject FROM event_journal WHERE type = %s"
                      " AND subject = ANY(%s)", stage, list(names)))
        assert set(per_subject) == set(names), stage
        assert set(per_subject.values()) == {1}, (stage, per_subject.most_common(3))
    assert query(settings, "SELECT name, reason FROM rejections WHERE name = ANY(%s)",
                 list(names)) == []


def assert_nothing_orphaned(settings: Settings) -> None:
    """Every archive object belongs to a catalogued product; the inbox is empty; the
    quarantine holds only what a rejection row accounts for."""
    s3 = storage.client(settings)
    owned: set[str] = set()
    folders: list[str] = []
    for row in query(settings, "SELECT archive_key, distribution_key FROM products"):
        for key in (row["archive_key"], row["distribution_key"]):
            if key and key.endswith("/"):
                folders.append(key)
            elif key:
                owned.add(key)
    orphans = [key for key in storage.list_keys(s3, settings.archive_bucket)
               if key not in owned and not any(key.startswith(f) for f in folders)]
    assert orphans == [], f"{len(orphans)} archive object(s) of no product: {orphans[:5]}"
    inbox = list(storage.list_keys(s3, settings.inbox_bucket))
    assert inbox == [], f"{len(inbox)} object(s) left in the inbox: {inbox[:5]}"
    accounted = [r["quarantine_key"] for r in query(settings,
                                                    "SELECT quarantine_key FROM rejections")]
    for key in storage.list_keys(s3, settings.quarantine_bucket):
        assert any(key.startswith(q.split("/", 1)[0] + "/") for q in accounted), key


def redeliveries(settings: Settings, since: str) -> int:
    """Events the router delivered more than once to the same subscriber since `since`
    (a timestamp): what at-least-once delivery cost during the run."""
    rows = query(settings,
                 "SELECT count(*) AS n FROM (SELECT e.event_id, d.trigger FROM router.deliveries d"
                 " JOIN router.events e ON e.seq = d.event_seq"
                 " WHERE d.status = 'delivered' AND e.received_at >= %s::timestamptz"
                 " GROUP BY 1, 2 HAVING count(*) > 1) AS twice", since)
    return rows[0]["n"]
