"""What the catalogue says the archive holds, for the scrub (shared/pipeline/integrity), and the
availability changes a scrub or a repair makes."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

# Each product's objects in the archive bucket, in S3's listing order (bytes of the UTF-8
# key: the "C" collation) after a key ('' for all), so the listing and the catalogue are
# merged in one pass. The served object is the distribution once packaged, else what was
# ingested; a plain EOF is one object for both. Evicted products are listed too: their
# objects should be gone. Two index range scans merged (0010_scrub_progress.sql), so a
# slice of a scrub reads its own rows, not the whole catalogue sorted.
_EXPECTED = """
SELECT * FROM (
    (SELECT p.distribution_key COLLATE "C" AS key, true AS served,
            p.id, p.logical_name, p.name, p.status, p.online, p.content_length, p.checksums
     FROM products p WHERE p.distribution_key COLLATE "C" > %(after)s
     ORDER BY 1 LIMIT %(limit)s)
    UNION ALL
    (SELECT p.archive_key COLLATE "C", p.distribution_key IS NULL,
            p.id, p.logical_name, p.name, p.status, p.online, p.content_length, p.checksums
     FROM products p WHERE p.archive_key COLLATE "C" > %(after)s
         AND p.archive_key IS DISTINCT FROM p.distribution_key
     ORDER BY 1 LIMIT %(limit)s)
) AS expected
ORDER BY key LIMIT %(limit)s
"""


def expected_objects(conn: psycopg.Connection, *, after: str = "",
                     limit: int | None = None) -> Iterator[dict]:
    """The (key, product) pairs the catalogue expects with a key after `after`, the first
    `limit` of them (None: all), streamed (a server-side cursor: the catalogue may hold a
    million products). Needs a connection outside autocommit."""
    with conn.cursor("auxip_expected_objects", row_factory=dict_row) as cursor:
        cursor.itersize = 2000
        cursor.execute(_EXPECTED, {"after": after, "limit": limit})
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


def scrub_position(conn: psycopg.Connection) -> str:
    """The key the scheduled scrub's next slice begins after ('' : a new pass)."""
    row = conn.execute("SELECT after_key FROM scrub_progress").fetchone()
    return str(row[0]) if row else ""


def save_scrub_position(conn: psycopg.Connection, after: str) -> None:
    """Where the next slice begins: after `after`, or a new pass when it is ''."""
    conn.execute(
        "INSERT INTO scrub_progress (after_key, pass_started) VALUES (%(after)s, now())"
        " ON CONFLICT (id) DO UPDATE SET after_key = %(after)s, updated_at = now(),"
        " pass_started = CASE WHEN scrub_progress.after_key = '' THEN now()"
        " ELSE scrub_progress.pass_started END", {"after": after})
