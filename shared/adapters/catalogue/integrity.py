"""What the catalogue says the archive holds, for the scrub (shared/pipeline/integrity), and the
availability changes a scrub or a repair makes."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

# Each product's objects in the archive bucket, in S3's listing order (bytes of the UTF-8
# key: the "C" collation), so the listing and the catalogue are merged in one pass. The
# served object is the distribution once packaged, else what was ingested; a plain EOF is
# one object for both. Evicted products are listed too: their objects should be gone.
_EXPECTED = """
SELECT k.key COLLATE "C" AS key, k.served, p.id, p.logical_name, p.name, p.status, p.online,
       p.content_length, p.checksums
FROM products p
CROSS JOIN LATERAL (VALUES
    (p.distribution_key, true),
    (p.archive_key, p.distribution_key IS NULL)) AS k (key, served)
WHERE k.key IS NOT NULL AND NOT (NOT k.served AND k.key = p.distribution_key)
ORDER BY 1
"""


def expected_objects(conn: psycopg.Connection) -> Iterator[dict]:
    """Every (key, product) the catalogue expects, streamed (a server-side cursor: the
    catalogue may hold a million products). Needs a connection outside autocommit."""
    with conn.cursor("auxip_expected_objects", row_factory=dict_row) as cursor:
        cursor.itersize = 2000
        cursor.execute(_EXPECTED)
        yield from cursor


def served_objects(conn: psycopg.Connection) -> Iterator[dict]:
    """The object $value serves of every product not evicted (SAFE folders not yet packaged
    left out: no single object), streamed. Needs a connection outside autocommit."""
    with conn.cursor("auxip_served_objects", row_factory=dict_row) as cursor:
        cursor.itersize = 2000
        cursor.execute(
            "SELECT coalesce(distribution_key, archive_key) AS key, true AS served, id,"
            " logical_name, name, status, online, content_length, checksums FROM products"
            " WHERE status <> 'evicted' AND right(coalesce(distribution_key, archive_key), 1)"
            " <> '/'")
        yield from cursor


def claimed(conn: psycopg.Connection, key: str) -> dict | None:
    """The product (not evicted) whose object `key` is, itself or under its SAFE folder."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT id, name, logical_name, status FROM products WHERE status <> 'evicted' AND"
        " (distribution_key = %(key)s OR archive_key = %(key)s OR (right(archive_key, 1) = '/'"
        " AND left(%(key)s, length(archive_key)) = archive_key)) LIMIT 1",
        {"key": key}).fetchone()


def mark_offline(conn: psycopg.Connection, product_id: UUID) -> bool:
    """A published product whose bytes are gone: listed, no longer downloadable (410)."""
    return conn.execute(
        "UPDATE products SET online = false, modification_date = now()"
        " WHERE id = %s AND status = 'published' AND online RETURNING id",
        (product_id,)).fetchone() is not None


def mark_online(conn: psycopg.Connection, product_id: UUID) -> bool:
    """A published product taken offline for want of its bytes, once they are back."""
    return conn.execute(
        "UPDATE products SET online = true, modification_date = now()"
        " WHERE id = %s AND status = 'published' AND NOT online RETURNING id",
        (product_id,)).fetchone() is not None
