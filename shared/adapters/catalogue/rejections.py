"""Rejected files: one row per refusal, pointing at the bytes kept in quarantine."""

from __future__ import annotations

import psycopg


def insert(conn: psycopg.Connection, *, name: str, source_bucket: str, source_key: str,
           quarantine_key: str | None, reason: str, detail: str, fingerprint: str | None,
           event_id: str | None) -> int:
    row = conn.execute(
        "INSERT INTO rejections (name, source_bucket, source_key, quarantine_key, reason,"
        " detail, fingerprint, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (name, source_bucket, source_key, quarantine_key, reason, detail, fingerprint,
         event_id),
    ).fetchone()
    return row[0]
