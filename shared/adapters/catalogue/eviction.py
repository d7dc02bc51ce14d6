"""The catalogue side of eviction: which published products are past their EvictionDate,
and taking one of them offline.

Every query keeps `online AND eviction_date <= %s` literally, so the planner can use the
partial index `products_eviction (eviction_date) WHERE online`.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

_COLUMNS = ("id, logical_name, name, product_type, layout, archive_key, distribution_key,"
            " content_length, eviction_date")
_DUE = "status = 'published' AND online AND eviction_date <= %s"


def due(conn: psycopg.Connection, now: datetime, limit: int) -> list[dict]:
    """The products due at `now`, earliest eviction date first; nothing is locked."""
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_COLUMNS} FROM products WHERE {_DUE}"  # nosec B608  # module constants only
        " ORDER BY eviction_date, id LIMIT %s",
        (now, limit),
    ).fetchall()


def lock_next_due(conn: psycopg.Connection, now: datetime) -> dict | None:
    """One due product, locked for the caller's transaction. SKIP LOCKED: another instance
    evicting at the same moment takes the next product instead of waiting for this one, and
    a row it committed meanwhile no longer matches `status = 'published'`."""
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_COLUMNS} FROM products WHERE {_DUE}"  # nosec B608  # module constants only
        " ORDER BY eviction_date, id LIMIT 1"
        " FOR UPDATE SKIP LOCKED",
        (now,),
    ).fetchone()


def mark_evicted(conn: psycopg.Connection, product_id: UUID) -> datetime | None:
    """Take the product offline; returns its new modification date (the eviction's time),
    None when it was no longer published."""
    row = conn.execute(
        "UPDATE products SET status = 'evicted', online = false, modification_date = now()"
        " WHERE id = %s AND status = 'published' RETURNING modification_date",
        (product_id,),
    ).fetchone()
    return None if row is None else row[0]
