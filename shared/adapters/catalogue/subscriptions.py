"""Subscription rows: written by prip (on behalf of their owner), read by notify."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

RUNNING = "running"
PAUSED = "paused"
CANCELLED = "cancelled"
STATUSES = (RUNNING, PAUSED, CANCELLED)
CREATED = "created"
DELETED = "deleted"
EVENTS = (CREATED, DELETED)


@dataclass(frozen=True)
class NewSubscription:
    id: UUID
    owner: str
    filter_param: str
    notification_endpoint: str
    notification_username: str | None
    notification_password: str | None
    status: str
    subscription_event: str


def insert(conn: psycopg.Connection, s: NewSubscription) -> dict:
    row = conn.cursor(row_factory=dict_row).execute(
        "INSERT INTO subscriptions (id, owner, filter_param, notification_endpoint,"
        " notification_username, notification_password, status, subscription_event)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (s.id, s.owner, s.filter_param, s.notification_endpoint, s.notification_username,
         s.notification_password, s.status, s.subscription_event),
    ).fetchone()
    assert row is not None
    return row


def get(conn: psycopg.Connection, subscription_id: UUID, owner: str | None) -> dict | None:
    """One subscription; `owner` None means any owner (operators)."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM subscriptions WHERE id = %s AND (%s::text IS NULL OR owner = %s)",
        (subscription_id, owner, owner),
    ).fetchone()


def page(conn: psycopg.Connection, owner: str | None, *, top: int, skip: int) -> list[dict]:
    """Up to `top` + 1 subscriptions, oldest first (the extra row says another page exists)."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM subscriptions WHERE %s::text IS NULL OR owner = %s"
        " ORDER BY submission_date, id LIMIT %s OFFSET %s",
        (owner, owner, top + 1, skip),
    ).fetchall()


def count(conn: psycopg.Connection, owner: str | None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM subscriptions WHERE %s::text IS NULL OR owner = %s", (owner, owner)
    ).fetchone()
    return int(row[0]) if row else 0


def set_status(conn: psycopg.Connection, subscription_id: UUID, status: str) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "UPDATE subscriptions SET status = %s WHERE id = %s RETURNING *", (status, subscription_id)
    ).fetchone()


def delete(conn: psycopg.Connection, subscription_id: UUID) -> bool:
    row = conn.execute(
        "DELETE FROM subscriptions WHERE id = %s RETURNING id", (subscription_id,)
    ).fetchone()
    return row is not None


def running(conn: psycopg.Connection, event: str) -> list[dict]:
    """The subscriptions to notify of `event` (created / deleted)."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM subscriptions WHERE status = 'running' AND subscription_event = %s"
        " ORDER BY submission_date, id",
        (event,),
    ).fetchall()


def mark_notified(conn: psycopg.Connection, subscription_id: UUID, when: datetime) -> None:
    conn.execute(
        "UPDATE subscriptions SET last_notification_date ="
        " greatest(coalesce(last_notification_date, %s), %s) WHERE id = %s",
        (when, when, subscription_id),
    )


def overview(conn: psycopg.Connection, *, owner: str | None = None,
             status: str | None = None) -> list[dict]:
    """Every subscription (for operators), with its delivered and failed attempt counts."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT s.*,"
        " count(n.id) FILTER (WHERE n.status = 'delivered') AS delivered,"
        " count(n.id) FILTER (WHERE n.status = 'failed') AS failed"
        " FROM subscriptions s LEFT JOIN notifications n ON n.subscription_id = s.id"
        " WHERE (%(owner)s::text IS NULL OR s.owner = %(owner)s)"
        " AND (%(status)s::text IS NULL OR s.status = %(status)s)"
        " GROUP BY s.id ORDER BY s.submission_date, s.id",
        {"owner": owner, "status": status},
    ).fetchall()
