"""Poll sources (`sources`: configuration, enabled, the poller's state) and what each has
fetched already (`seen_sources`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row


def upsert(conn: psycopg.Connection, row: Mapping[str, Any]) -> str:
    """Insert or update a source from the configuration file; 'created', 'updated' or
    'unchanged'. The poller's state is kept across updates (a changed URL or filter should
    not refetch everything) and reset only when the kind changes."""
    old = get(conn, row["name"])
    if old is None:
        conn.execute("INSERT INTO sources (name, kind, config, enabled) VALUES (%s, %s, %s, %s)",
                     (row["name"], row["kind"], json.dumps(row["config"]), row["enabled"]))
        return "created"
    if (old["kind"], old["config"], old["enabled"]) == (row["kind"], row["config"],
                                                        row["enabled"]):
        return "unchanged"
    conn.execute(
        "UPDATE sources SET kind = %s, config = %s, enabled = %s, updated_at = now(),"
        " state = CASE WHEN kind = %s THEN state ELSE '{}'::jsonb END WHERE name = %s",
        (row["kind"], json.dumps(row["config"]), row["enabled"], row["kind"], row["name"]))
    return "updated"


def get(conn: psycopg.Connection, name: str) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM sources WHERE name = %s", (name,)).fetchone()


def all_sources(conn: psycopg.Connection) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM sources ORDER BY name").fetchall()


def enabled_names(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sources WHERE enabled ORDER BY name").fetchall()]


def set_enabled(conn: psycopg.Connection, name: str, enabled: bool) -> bool:
    row = conn.execute("UPDATE sources SET enabled = %s, updated_at = now() WHERE name = %s"
                       " RETURNING name", (enabled, name)).fetchone()
    return row is not None


def delete(conn: psycopg.Connection, name: str) -> bool:
    """Remove a source; what it fetched stays remembered (a re-added source fetches only
    what is new)."""
    return conn.execute("DELETE FROM sources WHERE name = %s RETURNING name",
                        (name,)).fetchone() is not None


def save_state(conn: psycopg.Connection, name: str, state: Mapping[str, Any]) -> None:
    conn.execute("UPDATE sources SET state = %s WHERE name = %s", (json.dumps(state), name))


def seen(conn: psycopg.Connection, source: str, keys: Iterable[str]) -> dict[str, str | None]:
    """item key -> the version recorded when it was fetched, for the keys already seen."""
    wanted = list(keys)
    if not wanted:
        return {}
    rows = conn.execute("SELECT item_key, checksum FROM seen_sources WHERE source = %s"
                        " AND item_key = ANY(%s)", (source, wanted)).fetchall()
    return {key: version for key, version in rows}


def mark_seen(conn: psycopg.Connection, source: str, key: str, *, version: str,
              product_name: str, inbox_key: str, size: int, event_id: str) -> None:
    conn.execute(
        "INSERT INTO seen_sources (source, item_key, checksum, product_name, inbox_key, size,"
        " event_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (source, item_key) DO UPDATE SET checksum = EXCLUDED.checksum,"
        " product_name = EXCLUDED.product_name, inbox_key = EXCLUDED.inbox_key,"
        " size = EXCLUDED.size, event_id = EXCLUDED.event_id, seen_at = now()",
        (source, key, version, product_name, inbox_key, size, event_id))


def seen_count(conn: psycopg.Connection, source: str) -> int:
    row = conn.execute("SELECT count(*) FROM seen_sources WHERE source = %s",
                       (source,)).fetchone()
    return int(row[0]) if row else 0


def origin_of(conn: psycopg.Connection, names: Iterable[str]) -> str:
    """`poll:<source>` when a poller fetched a product of one of these names (its logical
    and distribution names), else `inbox`: it was put there directly."""
    row = conn.execute("SELECT source FROM seen_sources WHERE product_name = ANY(%s)"
                       " ORDER BY seen_at LIMIT 1", ([n for n in names if n],)).fetchone()
    return f"poll:{row[0]}" if row else "inbox"


def items_of(conn: psycopg.Connection, product_names: Iterable[str]) -> list[dict]:
    """What the pollers fetched of the products arriving under these names (X.EOF,
    X.SAFE, X.SAFE.zip): one row per item, e.g. every file of a SAFE folder."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT source, item_key, checksum, product_name, inbox_key, size FROM seen_sources"
        " WHERE product_name = ANY(%s) AND inbox_key IS NOT NULL ORDER BY source, item_key",
        ([n for n in product_names if n],)).fetchall()
