"""The audit trail's hash chain: every row has a place (`chain_seq` 1, 2, 3, ... without a
gap), the hash of the row before it (`prev_hash`) and its own (`row_hash`), so that altering,
removing or reordering rows shows.

One chain for the whole table: appends serialise on a transaction-scoped advisory lock
(every gunicorn worker, function and CLI writes the same table), held from reading the head
to the writer's commit, a few ms. The hash is SHA-256 over a canonical JSON encoding (sorted
keys, no spaces) of every column but `id`, with the place and prev_hash: `at` is set by
the writer in Python (microseconds, UTC) and `details` hashed as PostgreSQL's jsonb prints
it, so the same bytes are rebuilt from the table by `verify`.

What the chain cannot show by itself: rows cut off the end (the remaining chain is valid),
or the whole table rewritten with fresh hashes. Against both, operators keep the head
(`seq:hash`, printed by `auxip audit verify` and `export`) elsewhere (an anchor) and give
it to `verify --anchor`: the anchored row must still be there with that hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

GENESIS = "0" * 64
# The pg_advisory_xact_lock key of the chain's appends: "auxipa" in ASCII, apart from the
# hashtextextended() keys other writers use.
LOCK_KEY = 0x617578697061

ALTERED = "altered"
REMOVED = "removed"
REORDERED = "reordered"
OUTSIDE = "outside_chain"
ANCHOR = "anchor"

# Hashes verify remembers to tell a moved row from an altered one (bounded memory on a
# table of millions of rows).
_REMEMBERED = 100_000


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(row: Mapping[str, Any], *, seq: int, prev: str, details_text: str) -> str:
    """The hash of one row at place `seq` after a row hashed `prev`."""
    canonical = {
        "seq": seq, "prev_hash": prev, "at": timestamp(row["at"]),
        "actor": row["actor"], "action": row["action"], "outcome": row["outcome"],
        "product_id": _text(row["product_id"]), "subscription_id": _text(row["subscription_id"]),
        "client_address": row["client_address"], "bytes_sent": row["bytes_sent"],
        "range_spec": row["range_spec"], "details": details_text,
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def head(conn: psycopg.Connection) -> tuple[int, str]:
    """(seq, hash) of the chain's last row; (0, GENESIS) for an empty chain."""
    found = conn.cursor(row_factory=tuple_row).execute(
        "SELECT chain_seq, row_hash FROM audit_log WHERE chain_seq IS NOT NULL"
        " ORDER BY chain_seq DESC LIMIT 1").fetchone()
    return (found[0], found[1]) if found else (0, GENESIS)


def parse_anchor(text: str) -> tuple[int, str]:
    """`seq:hash` as verify and export print it."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{text!r} is not an anchor (seq:sha256-hex, as verify prints it)")
    return int(seq), digest


@dataclass(frozen=True)
class Problem:
    kind: str  # ALTERED, REMOVED, REORDERED, OUTSIDE, ANCHOR
    row_id: int | None
    seq: int | None
    message: str


@dataclass
class Report:
    checked: int = 0
    unchained: int = 0  # rows from before the chain (migration 0008), not covered
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] | None = None

    @property
    def anchor(self) -> str:
        return f"{self.head_seq}:{self.head_hash}"


def verify(conn: psycopg.Connection, *, anchor: tuple[int, str] | None = None,
           max_problems: int = 100) -> Report:
    """Walk the chain in seq order; every problem found (the first is the first tampered row),
    up to max_problems."""
    report = Report(problems=[])
    problems: list[Problem] = report.problems  # type: ignore[assignment]
    seen: dict[str, int] = {}  # row_hash -> seq, to tell a moved row from an altered one
    expected_seq, expected_prev, last_id = 1, GENESIS, 0
    first_chained_id: int | None = None
    anchor_seen = False
    for row in _rows(conn):
        seq, stored = row["chain_seq"], row["row_hash"]
        first_chained_id = first_chained_id or row["id"]
        report.checked += 1
        computed = row_hash(row, seq=seq, prev=row["prev_hash"] or "",
                            details_text=row["details_text"])
        if seq != expected_seq:
            gone = (f"seq {expected_seq}" if seq == expected_seq + 1
                    else f"seq {expected_seq}..{seq - 1}")
            problems.append(Problem(REMOVED, row["id"], seq,
                                    f"{gone} removed (missing before row id {row['id']},"
                                    f" seq {seq})"))
        elif computed != stored and _moved_from(row, seen) is not None:
            was = _moved_from(row, seen)
            problems.append(Problem(REORDERED, row["id"], seq,
                                    f"row id {row['id']} reordered: at seq {seq},"
                                    f" written as seq {was}"))
        elif computed != stored:
            problems.append(Problem(ALTERED, row["id"], seq,
                                    f"row id {row['id']} (seq {seq}) altered: its content"
                                    " does not match its hash"))
        elif row["prev_hash"] != expected_prev:
            problems.append(Problem(ALTERED, row["id"], seq,
                                    f"row id {row['id']} (seq {seq}) does not follow seq"
                                    f" {seq - 1}: that row was replaced, or this one re-hashed"))
        elif row["id"] < last_id:
            problems.append(Problem(REORDERED, row["id"], seq,
                                    f"row id {row['id']} (seq {seq}) reordered: its id is"
                                    f" lower than seq {seq - 1}'s ({last_id})"))
        if anchor is not None and seq == anchor[0]:
            anchor_seen = True
            if stored != anchor[1]:
                problems.append(Problem(ANCHOR, row["id"], seq,
                                        f"row id {row['id']} (seq {seq}) is not the anchored"
                                        f" row: hash {stored}, anchor {anchor[1]}"))
        seen.setdefault(stored or "", seq)
        if len(seen) > _REMEMBERED:
            del seen[next(iter(seen))]  # the oldest: a move farther back shows as altered
        expected_seq, expected_prev, last_id = seq + 1, stored, max(last_id, row["id"])
        report.head_seq, report.head_hash = seq, stored
        if len(problems) >= max_problems:
            return report
    if anchor is not None and not anchor_seen and anchor[0] > 0:
        problems.append(Problem(ANCHOR, None, anchor[0],
                                f"anchored row seq {anchor[0]} is gone: the chain ends at seq"
                                f" {report.head_seq} (rows removed from the end)"))
    _outside(conn, report, first_chained_id)
    return report


def _moved_from(row: Mapping[str, Any], seen: Mapping[str, int]) -> int | None:
    """The seq this row was written at, when its content still hashes right there: the row
    it followed is known (its hash is this row's prev_hash)."""
    before = seen.get(row["prev_hash"] or "")
    if before is None and row["prev_hash"] == GENESIS:
        before = 0
    if before is None or before + 1 == row["chain_seq"]:
        return _forward_move(row)
    if row_hash(row, seq=before + 1, prev=row["prev_hash"],
                details_text=row["details_text"]) == row["row_hash"]:
        return before + 1
    return None


def _forward_move(row: Mapping[str, Any]) -> int | None:
    """A row moved to an earlier place than it was written at: the row it followed comes
    later in the walk. Its original seq is found by trying the places after it (bounded)."""
    for was in range(row["chain_seq"] + 1, row["chain_seq"] + 1000):
        if row_hash(row, seq=was, prev=row["prev_hash"] or "",
                    details_text=row["details_text"]) == row["row_hash"]:
            return was
    return None


def _rows(conn: psycopg.Connection) -> Iterator[dict[str, Any]]:
    # A named (server-side) cursor: the table may hold millions of rows.
    with conn.transaction(), conn.cursor("audit_verify", row_factory=dict_row) as cursor:
        cursor.itersize = 5000
        cursor.execute("SELECT *, details::text AS details_text FROM audit_log"
                       " WHERE chain_seq IS NOT NULL ORDER BY chain_seq")
        yield from cursor


def _outside(conn: psycopg.Connection, report: Report, first_chained_id: int | None) -> None:
    """Rows without a place: those from before the chain are only counted; one written
    after the chain began was slipped in around `record`."""
    problems: list[Problem] = report.problems  # type: ignore[assignment]
    cursor = conn.cursor(row_factory=tuple_row)
    report.unchained = cursor.execute(
        "SELECT count(*) FROM audit_log WHERE chain_seq IS NULL"
        " AND (%(first)s::bigint IS NULL OR id < %(first)s)",
        {"first": first_chained_id}).fetchone()[0]
    if first_chained_id is None:
        return
    for (row_id,) in cursor.execute(
            "SELECT id FROM audit_log WHERE chain_seq IS NULL AND id > %s ORDER BY id LIMIT 10",
            (first_chained_id,)):
        problems.append(Problem(OUTSIDE, row_id, None,
                                f"row id {row_id} has no place in the chain but was written"
                                " after it began: inserted around the audit writer"))
