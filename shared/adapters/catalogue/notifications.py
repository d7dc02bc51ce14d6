"""Notification attempts: one row per POST notify makes to a subscription's endpoint."""

from __future__ import annotations

from uuid import UUID

import psycopg
from psycopg.rows import dict_row

DELIVERED = "delivered"
FAILED = "failed"
_MAX_ERROR_CHARS = 1000


def delivered(conn: psycopg.Connection, subscription_id: UUID, product_id: UUID) -> bool:
    row = conn.execute(
        "SELECT 1 FROM notifications WHERE subscription_id = %s AND product_id = %s"
        " AND status = 'delivered'",
        (subscription_id, product_id),
    ).fetchone()
    return row is not None


def attempts_so_far(conn: psycopg.Connection, subscription_id: UUID, product_id: UUID) -> int:
    """Attempts of earlier deliveries of the same event (a redelivery numbers on from them)."""
    row = conn.execute(
        "SELECT coalesce(max(attempt), 0) FROM notifications"
        " WHERE subscription_id = %s AND product_id = %s",
        (subscription_id, product_id),
    ).fetchone()
    return int(row[0]) if row else 0


def record(conn: psycopg.Connection, subscription_id: UUID, product_id: UUID, *, attempt: int,
           status: str, http_status: int | None, error: str | None) -> bool:
    """False when a delivered row exists already (the unique index refused a second one)."""
    row = conn.execute(
        "INSERT INTO notifications (subscription_id, product_id, attempt, status, http_status,"
        " error) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (subscription_id, product_id, attempt, status, http_status,
         error[:_MAX_ERROR_CHARS] if error else None),
    ).fetchone()
    return row is not None


def of_product(conn: psycopg.Connection, product_id: UUID) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM notifications WHERE product_id = %s ORDER BY subscription_id, attempt",
        (product_id,),
    ).fetchall()
