"""Routes: a rule (match/exclude, retry) and a target, loaded from the configuration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row


def upsert(conn: psycopg.Connection, row: Mapping[str, Any]) -> str:
    """'created', 'updated' or 'unchanged'."""
    old = get(conn, row["name"])
    if old is None:
        conn.execute("INSERT INTO routes (name, rule, target, enabled) VALUES (%s, %s, %s, %s)",
                     (row["name"], json.dumps(row["rule"]), json.dumps(row["target"]),
                      row["enabled"]))
        return "created"
    if (old["rule"], old["target"], old["enabled"]) == (row["rule"], row["target"],
                                                        row["enabled"]):
        return "unchanged"
    conn.execute("UPDATE routes SET rule = %s, target = %s, enabled = %s, updated_at = now()"
                 " WHERE name = %s", (json.dumps(row["rule"]), json.dumps(row["target"]),
                                      row["enabled"], row["name"]))
    return "updated"


def get(conn: psycopg.Connection, name: str) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM routes WHERE name = %s", (name,)).fetchone()


def all_routes(conn: psycopg.Connection) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM routes ORDER BY name").fetchall()


def enabled_routes(conn: psycopg.Connection) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM routes WHERE enabled ORDER BY name").fetchall()


def set_enabled(conn: psycopg.Connection, name: str, enabled: bool) -> bool:
    row = conn.execute("UPDATE routes SET enabled = %s, updated_at = now() WHERE name = %s"
                       " RETURNING name", (enabled, name)).fetchone()
    return row is not None


def delete(conn: psycopg.Connection, name: str) -> bool:
    """Remove a route; its transfers stay on record."""
    return conn.execute("DELETE FROM routes WHERE name = %s RETURNING name",
                        (name,)).fetchone() is not None
