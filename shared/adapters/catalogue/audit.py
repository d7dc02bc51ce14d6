"""The audit trail: who downloaded what, who changed which subscription.

Rows hold identities, outcomes and sizes, never credentials (no token, no password).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    outcome: str
    product_id: UUID | None = None
    subscription_id: UUID | None = None
    client_address: str | None = None
    bytes_sent: int | None = None
    range_spec: str | None = None
    details: dict[str, object] = field(default_factory=dict)


def record(conn: psycopg.Connection, entry: AuditEntry) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, action, outcome, product_id, subscription_id,"
        " client_address, bytes_sent, range_spec, details)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (entry.actor, entry.action, entry.outcome, entry.product_id, entry.subscription_id,
         entry.client_address, entry.bytes_sent, entry.range_spec,
         json.dumps(entry.details, default=str)),
    )


def search(conn: psycopg.Connection, *, actor: str | None = None, action: str | None = None,
           since: datetime | None = None, limit: int = 100) -> list[dict]:
    """Newest first. `action` matches a whole action or a family (`download` matches
    `download` and `download.head`; `subscription` matches every subscription change)."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM audit_log"
        " WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
        " AND (%(action)s::text IS NULL OR action = %(action)s"
        "      OR starts_with(action, %(action)s || '.'))"
        " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
        " ORDER BY at DESC, id DESC LIMIT %(limit)s",
        {"actor": actor, "action": action, "since": since, "limit": limit},
    ).fetchall()
