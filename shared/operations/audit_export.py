"""The audit trail as ECS (Elastic Common Schema) JSON lines, for archiving and for a SIEM:
one document per row, in chain order, with the row's place and hashes under
`auxip.audit`, so an archive can be checked against the chain later.

Field names are ECS's (https://www.elastic.co/guide/en/ecs/current/): `@timestamp`,
`event.kind` event, `event.category`/`event.type` from the action, `event.action` the
audit action, `event.outcome` success/failure/unknown (the auxip outcome itself in
`auxip.audit.outcome`), `user.name`, `source.ip` (`source.address` when the peer is not an
IP address), and what ECS has no field for under `auxip.*`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from ipaddress import ip_address
from typing import IO, Any

import psycopg
from psycopg.rows import dict_row

from shared.adapters.catalogue.audit_chain import timestamp

ECS_VERSION = "8.11.0"
DATASET = "auxip.audit"

# auxip outcomes (shared/prip/downloads.py, subscriptions) -> ECS event.outcome
_SUCCESS = {"ok", "completed", "partial", "redirected"}
_UNKNOWN = {"aborted"}

# action family -> (event.category, event.type)
_KINDS: dict[str, tuple[list[str], list[str]]] = {
    "download": (["web", "file"], ["access"]),
    "subscription.create": (["configuration"], ["creation"]),
    "subscription.update": (["configuration"], ["change"]),
    "subscription.delete": (["configuration"], ["deletion"]),
}


def document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ECS document of one audit_log row."""
    category, types = _KINDS.get(row["action"]) or _KINDS.get(
        row["action"].split(".", 1)[0], (["web"], ["info"]))
    outcome = row["outcome"]
    doc: dict[str, Any] = {
        "@timestamp": timestamp(row["at"]),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "event", "category": category, "type": types,
            "action": row["action"], "dataset": DATASET,
            "outcome": ("success" if outcome in _SUCCESS
                        else "unknown" if outcome in _UNKNOWN else "failure"),
            "id": str(row["id"]),
        },
        "user": {"name": row["actor"]},
        "auxip": {"audit": {"id": row["id"], "seq": row["chain_seq"],
                            "hash": row["row_hash"], "prev_hash": row["prev_hash"],
                            "outcome": outcome}},
    }
    if row["client_address"]:
        doc["source"] = _source(row["client_address"])
    auxip: dict[str, Any] = doc["auxip"]
    if row["product_id"] is not None:
        auxip["product"] = {"id": str(row["product_id"])}
    if row["subscription_id"] is not None:
        auxip["subscription"] = {"id": str(row["subscription_id"])}
    if row["bytes_sent"] is not None:
        auxip["bytes_sent"] = row["bytes_sent"]
    if row["range_spec"]:
        auxip["range"] = row["range_spec"]
    if row["details"]:
        auxip["details"] = row["details"]
    return doc


def _source(address: str) -> dict[str, str]:
    try:
        return {"ip": str(ip_address(address)), "address": address}
    except ValueError:
        return {"address": address}


def rows(conn: psycopg.Connection, since: datetime | None) -> Iterator[dict[str, Any]]:
    """Chained rows in chain order, then those from before the chain (no place) by id."""
    with conn.transaction(), conn.cursor("audit_export", row_factory=dict_row) as cursor:
        cursor.itersize = 5000
        cursor.execute("SELECT * FROM audit_log"
                       " WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
                       " ORDER BY chain_seq NULLS FIRST, id", {"since": since})
        yield from cursor


def write(conn: psycopg.Connection, out: IO[str],
          since: datetime | None) -> tuple[int, str | None]:
    """ECS JSON lines of the rows since `since` to `out`: how many, and the anchor
    (`seq:hash`) of the last chained row written (None when none was)."""
    count, anchor = 0, None
    for row in rows(conn, since):
        out.write(json.dumps(document(row), separators=(",", ":"), default=str))
        out.write("\n")
        count += 1
        if row["chain_seq"] is not None:
            anchor = f"{row['chain_seq']}:{row['row_hash']}"
    return count, anchor
