"""The audit trail: who downloaded what, who changed which subscription.

Rows hold identities, outcomes and sizes, never credentials (no token, no password). Each
row is appended to a hash chain (audit_chain.py), in the caller's transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row, tuple_row

from shared.adapters.catalogue import audit_chain


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
    """Append one row to the chain. Within the caller's transaction when there is one (the
    row then commits or rolls back with the change it records): the chain's lock is held
    until that commit, so keep `record` the transaction's last statement."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (audit_chain.LOCK_KEY,))
        seq, prev = audit_chain.head(conn)
        at = datetime.now(UTC)
        row_id, details_text = cursor.execute(
            "INSERT INTO audit_log (at, actor, action, outcome, product_id, subscription_id,"
            " client_address, bytes_sent, range_spec, details, chain_seq, prev_hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id, details::text",
            (at, entry.actor, entry.action, entry.outcome, entry.product_id,
             entry.subscription_id, entry.client_address, entry.bytes_sent, entry.range_spec,
             json.dumps(entry.details, default=str), seq + 1, prev),
        ).fetchone()
        digest = audit_chain.row_hash(
            {"at": at, "actor": entry.actor, "action": entry.action, "outcome": entry.outcome,
             "product_id": entry.product_id, "subscription_id": entry.subscription_id,
             "client_address": entry.client_address, "bytes_sent": entry.bytes_sent,
             "range_spec": entry.range_spec},
            seq=seq + 1, prev=prev, details_text=details_text)
        cursor.execute("UPDATE audit_log SET row_hash = %s WHERE id = %s", (digest, row_id))


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
