"""The router's durable state in PostgreSQL (schema `router`, migration 0002_router.sql).

Leases: claiming a delivery stamps it with this router's instance name and pushes
`next_attempt_at` past the longest attempt, so a delivery whose router died becomes due
again by itself. A router's connections carry `application_name = auxip-router/<instance>`;
deliveries claimed by an instance with no connection left are released at once
(`reclaim_orphans`) instead of waiting for the lease. An interrupted attempt does not
count: its outcome is unknown, so the event is simply delivered again (at least once).

Every state change of a claimed delivery checks that the claim is still this router's (same
instance, same attempt number), so a late answer never overwrites a newer claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from devstack.router.topology import Subscription
from devstack.router.wire import Event
from shared.adapters.catalogue.dead_letters import ATTEMPTS as ATTEMPTS_EXTENSION
from shared.adapters.db_sessions import check_session

APPLICATION_PREFIX = "auxip-router/"
CHANNEL = "auxip_router"


def new_instance() -> str:
    return uuid.uuid4().hex[:16]


def application_name(instance: str) -> str:
    return APPLICATION_PREFIX + instance


@dataclass(frozen=True)
class Claimed:
    id: int
    trigger: str
    subscriber: str
    stage: str  # subscriber | deadletter
    attempt: int  # number of this attempt within its stage, from 1
    broker: str
    event: Event
    error_code: int | None
    error_data: bytes | None
    error_extensions: dict[str, str] | None


@dataclass(frozen=True)
class Failure:
    status: int | None  # HTTP status, None when no response came back
    error: str
    body: bytes | None = None  # first KiB of the response body
    extensions: dict[str, str] | None = None  # kne-* response headers


@dataclass(frozen=True)
class Reply:
    event: Event
    broker: str
    subscriptions: Sequence[Subscription]


_INSERT_EVENT = """
    WITH event AS (
        INSERT INTO router.events (broker, event_id, source, type, subject, attributes, data, origin)
        SELECT %(broker)s, %(id)s, %(source)s, %(type)s, %(subject)s, %(attributes)s, %(data)s, %(origin)s
        {guard}
        RETURNING seq
    ), deliveries AS (
        INSERT INTO router.deliveries (event_seq, trigger, subscriber)
        SELECT event.seq, s.trigger, s.subscriber
        FROM event, unnest(%(triggers)s::text[], %(subscribers)s::text[]) AS s(trigger, subscriber)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM event), pg_notify(%(channel)s, %(me)s)
"""


class Store:
    def __init__(self, pool: ConnectionPool, instance: str) -> None:
        self.pool = pool
        self.instance = instance

    # -- ingestion --------------------------------------------------------------------------

    def ingest(self, event: Event, broker: str, subscriptions: Sequence[Subscription], origin: str) -> None:
        """Store the event and one pending delivery per subscription, in one transaction."""
        with self.pool.connection() as conn:
            conn.execute(_INSERT_EVENT.format(guard=""), self._event_params(event, broker, subscriptions, origin))

    def ingest_tick(
        self, ping: str, tick: datetime, event: Event, broker: str, subscriptions: Sequence[Subscription]
    ) -> bool:
        """Like ingest, once per PingSource tick across restarts and routers; False if done."""
        sql = (
            "WITH tick AS (INSERT INTO router.ping_ticks (source, tick) VALUES (%(ping)s, %(tick)s)"
            " ON CONFLICT DO NOTHING RETURNING 1)"
            # nosec B608  # a constant guard in a constant query
            + _INSERT_EVENT.format(guard="WHERE EXISTS (SELECT 1 FROM tick)")
            .replace("WITH event", ", event", 1)
        )
        params = self._event_params(event, broker, subscriptions, "ping") | {"ping": ping, "tick": tick}
        with self.pool.connection() as conn:
            row = conn.execute(sql, params).fetchone()
        return bool(row and row[0])

    # -- dispatch ---------------------------------------------------------------------------

    def claim(self, limit: int, lease_s: float) -> list[Claimed]:
        if limit <= 0:
            return []
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                WITH due AS (
                    SELECT id FROM router.deliveries
                    WHERE status = 'pending' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE router.deliveries d
                SET claimed_by = %(me)s, attempts = d.attempts + 1,
                    next_attempt_at = now() + %(lease)s * interval '1 second'
                FROM due, router.events e
                WHERE d.id = due.id AND e.seq = d.event_seq
                RETURNING d.id, d.trigger, d.subscriber, d.stage, d.attempts, e.broker,
                          e.attributes, e.data, d.error_code, d.error_data, d.error_extensions
                """,
                {"limit": limit, "me": self.instance, "lease": lease_s},
            ).fetchall()
        return [
            Claimed(
                id=row[0], trigger=row[1], subscriber=row[2], stage=row[3], attempt=row[4],
                broker=row[5], event=Event(row[6], bytes(row[7]) if row[7] is not None else None),
                error_code=row[8], error_data=bytes(row[9]) if row[9] is not None else None,
                error_extensions=row[10],
            )
            for row in rows
        ]

    def seconds_until_due(self) -> float | None:
        """Seconds until the earliest pending delivery is due (<= 0: due now); None: none."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM min(next_attempt_at) - clock_timestamp())"
                " FROM router.deliveries WHERE status = 'pending'"
            ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def delivered(self, claimed: Claimed, status: int, reply: Reply | None = None) -> bool:
        with self.pool.connection() as conn, conn.transaction():
            done = self._update(
                conn, claimed,
                "status = 'delivered', finished_at = now(), last_status = %(status)s, last_error = NULL",
                {"status": status},
            )
            if done and reply is not None and reply.subscriptions:
                conn.execute(
                    _INSERT_EVENT.format(guard=""),
                    self._event_params(reply.event, reply.broker, reply.subscriptions, "reply"),
                )
        return done

    def delivered_many(self, done: Sequence[tuple[Claimed, int]]) -> int:
        """Mark many deliveries done in one statement (the common, reply-less case)."""
        if not done:
            return 0
        with self.pool.connection() as conn:
            cursor = conn.execute(
                """
                UPDATE router.deliveries d
                SET claimed_by = NULL, status = 'delivered', finished_at = now(),
                    last_status = u.status, last_error = NULL
                FROM unnest(%(ids)s::bigint[], %(attempts)s::int[], %(statuses)s::int[])
                     AS u(id, attempt, status)
                WHERE d.id = u.id AND d.claimed_by = %(me)s AND d.attempts = u.attempt
                  AND d.status = 'pending'
                """,
                {
                    "ids": [c.id for c, _ in done],
                    "attempts": [c.attempt for c, _ in done],
                    "statuses": [status for _, status in done],
                    "me": self.instance,
                },
            )
            return cursor.rowcount

    def dead(self, claimed: Claimed, status: int) -> bool:
        """The dead-letter sink accepted the event."""
        with self.pool.connection() as conn:
            return self._update(
                conn, claimed,
                "status = 'dead', finished_at = now(), last_status = %(status)s, last_error = NULL",
                {"status": status},
            )

    def retry_later(self, claimed: Claimed, delay_s: float, failure: Failure) -> bool:
        with self.pool.connection() as conn:
            return self._update(
                conn, claimed,
                "next_attempt_at = now() + %(delay)s * interval '1 second',"
                " last_status = %(status)s, last_error = %(error)s",
                {"delay": delay_s, "status": failure.status, "error": failure.error},
            )

    def to_dead_letter(self, claimed: Claimed, failure: Failure) -> bool:
        """Subscriber attempts are over: next, the dead-letter sink (due at once). How many
        there were travels with the error (ATTEMPTS_EXTENSION): Knative's own extensions
        do not say, and the deadletter function records it."""
        counted = Failure(failure.status, failure.error, failure.body,
                          {**(failure.extensions or {}), ATTEMPTS_EXTENSION: str(claimed.attempt)})
        with self.pool.connection() as conn:
            return self._update(
                conn, claimed,
                "stage = 'deadletter', attempts = 0, next_attempt_at = now(),"
                " last_status = %(status)s, last_error = %(error)s, error_code = %(status)s,"
                " error_data = %(body)s, error_extensions = %(extensions)s",
                _failure_params(counted),
            )

    def failed(self, claimed: Claimed, failure: Failure) -> bool:
        """Out of attempts with nowhere left to send it: kept for operators, never dropped."""
        keep_subscriber_error = claimed.stage == "deadletter"
        with self.pool.connection() as conn:
            return self._update(
                conn, claimed,
                "status = 'failed', finished_at = now(), last_status = %(status)s,"
                " last_error = %(error)s"
                + ("" if keep_subscriber_error else
                   ", error_code = %(status)s, error_data = %(body)s, error_extensions = %(extensions)s"),
                _failure_params(failure),
            )

    def record_failed(self, event: Event, subscription: Subscription, stage: str, attempts: int,
                      failure: Failure) -> None:
        """A KafkaSource's record that neither its sink nor its dead-letter sink took: kept
        as a failed delivery (listed by --failed, sent again by --redeliver)."""
        params = _event_params(event, subscription.key, [subscription], "kafka", self.instance)
        with self.pool.connection() as conn:
            conn.execute(
                """
                WITH event AS (
                    INSERT INTO router.events
                        (broker, event_id, source, type, subject, attributes, data, origin)
                    VALUES (%(broker)s, %(id)s, %(source)s, %(type)s, %(subject)s,
                            %(attributes)s, %(data)s, %(origin)s)
                    RETURNING seq
                )
                INSERT INTO router.deliveries
                    (event_seq, trigger, subscriber, stage, status, attempts, last_status,
                     last_error, error_code, error_data, error_extensions, finished_at)
                SELECT seq, %(trigger)s, %(subscriber)s, %(stage)s, 'failed', %(attempts)s,
                       %(status)s, %(error)s, %(status)s, %(body)s, %(extensions)s, now()
                FROM event
                """,
                params | _failure_params(failure) | {
                    "trigger": subscription.key, "subscriber": subscription.url,
                    "stage": stage, "attempts": attempts},
            )

    def release(self, claims: Sequence[Claimed]) -> None:
        """Hand back claims never attempted (shutdown): due again at once, uncounted."""
        if not claims:
            return
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE router.deliveries SET claimed_by = NULL, next_attempt_at = now(),"
                " attempts = attempts - 1"
                " WHERE id = ANY(%(ids)s) AND claimed_by = %(me)s AND status = 'pending'",
                {"ids": [c.id for c in claims], "me": self.instance},
            )

    def _event_params(self, event: Event, broker: str, subscriptions: Sequence[Subscription], origin: str) -> dict:
        return _event_params(event, broker, subscriptions, origin, self.instance)

    def _update(self, conn: psycopg.Connection, claimed: Claimed, assignments: str, params: dict) -> bool:
        cursor = conn.execute(
            f"UPDATE router.deliveries SET claimed_by = NULL, {assignments}"
            " WHERE id = %(id)s AND claimed_by = %(me)s AND attempts = %(attempt)s"
            " AND status = 'pending'",  # nosec B608  # assignments: this class's constants
            params | {"id": claimed.id, "me": self.instance, "attempt": claimed.attempt},
        )
        return cursor.rowcount == 1

    # -- housekeeping -----------------------------------------------------------------------

    def reclaim_orphans(self) -> int:
        """Release deliveries claimed by routers that no longer have a database session."""
        with self.pool.connection() as conn:
            cursor = conn.execute(
                """
                UPDATE router.deliveries d
                SET claimed_by = NULL, next_attempt_at = now(), attempts = greatest(d.attempts - 1, 0)
                WHERE d.claimed_by IS NOT NULL AND d.status = 'pending' AND d.claimed_by <> %(me)s
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_stat_activity a
                      WHERE a.application_name = %(prefix)s || d.claimed_by)
                """,
                {"me": self.instance, "prefix": APPLICATION_PREFIX},
            )
            if cursor.rowcount:
                conn.execute(f"SELECT pg_notify('{CHANNEL}', '')")  # wakes every router, this one too
            return cursor.rowcount

    def purge(self, older_than_s: float) -> int:
        """Forget events whose deliveries all ended well; failed ones stay for operators."""
        with self.pool.connection() as conn:
            cursor = conn.execute(
                """
                DELETE FROM router.events e
                WHERE e.received_at < now() - %(age)s * interval '1 second'
                  AND NOT EXISTS (
                      SELECT 1 FROM router.deliveries d
                      WHERE d.event_seq = e.seq AND d.status IN ('pending', 'failed'))
                """,
                {"age": older_than_s},
            )
            conn.execute(
                "DELETE FROM router.ping_ticks WHERE tick < now() - %(age)s * interval '1 second'",
                {"age": older_than_s},
            )
            return cursor.rowcount

    def redeliver(self, ids: Sequence[int]) -> int:
        """Operators: send failed or dead-lettered deliveries to their subscriber again."""
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE router.deliveries SET status = 'pending', stage = 'subscriber', attempts = 0,"
                " next_attempt_at = now(), claimed_by = NULL, finished_at = NULL"
                " WHERE id = ANY(%(ids)s) AND status IN ('failed', 'dead')",
                {"ids": list(ids)},
            )
            conn.execute(f"SELECT pg_notify('{CHANNEL}', '')")
            return cursor.rowcount

    def deliveries(self, statuses: Sequence[str], limit: int = 100) -> list[dict]:
        """Operators' view: deliveries in the given states, oldest first."""
        with self.pool.connection() as conn:
            cursor = conn.execute(
                """
                SELECT d.id, d.status, d.stage, d.trigger, d.subscriber, d.attempts, d.last_status,
                       d.last_error, d.error_code, d.created_at, d.finished_at, d.next_attempt_at,
                       e.event_id, e.type, e.source, e.subject, e.broker
                FROM router.deliveries d JOIN router.events e ON e.seq = d.event_seq
                WHERE d.status = ANY(%(statuses)s)
                ORDER BY d.id LIMIT %(limit)s
                """,
                {"statuses": list(statuses), "limit": limit},
            )
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row)) for row in cursor.fetchall()]


def _event_params(
    event: Event, broker: str, subscriptions: Sequence[Subscription], origin: str, instance: str
) -> dict:
    return {
        "me": instance,
        "channel": CHANNEL,
        "broker": broker,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "attributes": Jsonb(dict(event.attributes)),
        "data": event.data,
        "origin": origin,
        "triggers": [s.key for s in subscriptions],
        "subscribers": [s.url for s in subscriptions],
    }


def _failure_params(failure: Failure) -> dict:
    return {
        "status": failure.status,
        "error": failure.error,
        "body": failure.body,
        "extensions": Jsonb(failure.extensions) if failure.extensions else None,
    }


def open_pool(database_url: str, instance: str, size: int) -> ConnectionPool:
    return ConnectionPool(
        database_url,
        min_size=2,
        max_size=max(size, 2),
        kwargs={"autocommit": True, "application_name": application_name(instance)},
        open=True,
        name="auxip-router",
        check=check_session,  # sessions that died since their last use
    )
