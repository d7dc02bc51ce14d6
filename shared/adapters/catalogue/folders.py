"""SAFE folders waiting for their last objects."""

from __future__ import annotations

import json

import psycopg
from psycopg.rows import dict_row


def touch(conn: psycopg.Connection, bucket: str, prefix: str, logical_name: str,
          missing: list[str]) -> None:
    conn.execute(
        "INSERT INTO pending_folders (bucket, prefix, logical_name, missing)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (bucket, prefix) DO UPDATE"
        " SET last_seen = now(), missing = EXCLUDED.missing",
        (bucket, prefix, logical_name, json.dumps(missing)),
    )


def forget(conn: psycopg.Connection, bucket: str, prefix: str) -> None:
    conn.execute("DELETE FROM pending_folders WHERE bucket = %s AND prefix = %s",
                 (bucket, prefix))


def stale(conn: psycopg.Connection, grace_s: float) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM pending_folders WHERE last_seen < now() - make_interval(secs => %s)"
        " ORDER BY last_seen", (grace_s,),
    ).fetchall()
