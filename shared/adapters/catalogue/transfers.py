"""Transfers: one row per (route, product), from pending to completed or failed.

UNIQUE (route, product_id) makes a redelivered `product.published` find the row it
created the first time instead of transferring again."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

PENDING = "pending"
COMPLETED = "completed"
FAILED = "failed"


def create(conn: psycopg.Connection, transfer_id: UUID, route: str, product_id: UUID,
           target: str) -> dict:
    """The transfer of this product on this route: created now, or the existing one."""
    conn.execute("INSERT INTO transfers (id, route, product_id, target, status)"
                 " VALUES (%s, %s, %s, %s, 'pending') ON CONFLICT (route, product_id) DO NOTHING",
                 (transfer_id, route, product_id, target))
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM transfers WHERE route = %s AND product_id = %s",
        (route, product_id)).fetchone()
    assert row is not None
    return row


def get(conn: psycopg.Connection, transfer_id: UUID) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM transfers WHERE id = %s", (transfer_id,)).fetchone()


def begin_attempt(conn: psycopg.Connection, transfer_id: UUID, target: str) -> int | None:
    """Count an attempt before making it (a crash during it still counts); the attempt's
    number, None when the transfer is no longer pending."""
    row = conn.execute(
        "UPDATE transfers SET attempts = attempts + 1, target = %s, updated_at = now()"
        " WHERE id = %s AND status = 'pending' RETURNING attempts",
        (target, transfer_id)).fetchone()
    return int(row[0]) if row else None


def complete(conn: psycopg.Connection, transfer_id: UUID, *, size: int, duration_ms: int,
             checksum: str) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "UPDATE transfers SET status = 'completed', bytes = %s, duration_ms = %s,"
        " checksum = %s, error = NULL, reason = NULL, finished_at = now(), updated_at = now()"
        " WHERE id = %s AND status = 'pending' RETURNING *",
        (size, duration_ms, checksum, transfer_id)).fetchone()


def retry_later(conn: psycopg.Connection, transfer_id: UUID, *, error: str, reason: str,
                at: datetime, duration_ms: int) -> None:
    conn.execute("UPDATE transfers SET error = %s, reason = %s, next_attempt_at = %s,"
                 " duration_ms = %s, updated_at = now() WHERE id = %s AND status = 'pending'",
                 (error, reason, at, duration_ms, transfer_id))


def fail(conn: psycopg.Connection, transfer_id: UUID, *, error: str, reason: str,
         duration_ms: int | None) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "UPDATE transfers SET status = 'failed', error = %s, reason = %s, duration_ms = %s,"
        " finished_at = now(), updated_at = now() WHERE id = %s AND status = 'pending'"
        " RETURNING *", (error, reason, duration_ms, transfer_id)).fetchone()


def due(conn: psycopg.Connection, limit: int) -> list[dict]:
    """Pending transfers whose next attempt is due, oldest first."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM transfers WHERE status = 'pending' AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at LIMIT %s", (limit,)).fetchall()


def retry_failed(conn: psycopg.Connection, route: str, product_id: UUID | None = None) -> int:
    """Operators: failed transfers of a route back to pending, due now, attempts reset."""
    rows = conn.execute(
        "UPDATE transfers SET status = 'pending', attempts = 0, next_attempt_at = now(),"
        " finished_at = NULL, updated_at = now() WHERE route = %s AND status = 'failed'"
        " AND (%s::uuid IS NULL OR product_id = %s::uuid) RETURNING id",
        (route, product_id, product_id)).fetchall()
    return len(rows)


def recent(conn: psycopg.Connection, *, route: str | None = None, status: str | None = None,
           limit: int = 50) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT t.*, p.name AS product_name FROM transfers t"
        " LEFT JOIN products p ON p.id = t.product_id"
        " WHERE (%s::text IS NULL OR t.route = %s) AND (%s::text IS NULL OR t.status = %s)"
        " ORDER BY t.updated_at DESC LIMIT %s",
        (route, route, status, status, limit)).fetchall()
