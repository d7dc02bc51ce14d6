"""PublicationDates in commit order.

Clients of an AUXIP or PRIP poll `PublicationDate gt <the last one they saw>`. A date taken
from a process's clock before its transaction commits breaks that: two publications made
at once can commit in the other order, and a client that listed the later date first never
lists the earlier one. `stamp` gives the date from one catalogue row, later than every date
given before, and the row stays locked until the caller's transaction ends: the next
publication waits for this one's commit, so a product is visible before any product with a
later date is.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

# ON CONFLICT DO UPDATE reads the row's latest committed version (a waiter sees the date
# its predecessor committed), and makes the row again if a test emptied the table.
_STAMP = (
    "INSERT INTO publication_clock (id, last) VALUES (true, %s)"
    " ON CONFLICT (id) DO UPDATE SET last = greatest(excluded.last,"
    " publication_clock.last + interval '1 microsecond') RETURNING last"
)


def stamp(conn: psycopg.Connection, at: datetime) -> datetime:
    """The PublicationDate for a product published in `conn`'s open transaction: `at` (the
    caller's clock), or just after the last date given if that is later. The publications
    of other transactions wait until this one ends."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
        raise RuntimeError("stamp outside a transaction: its lock would end at once")
    row = conn.execute(_STAMP, (at,)).fetchone()
    assert row is not None
    last: datetime = row[0]
    return last.astimezone(UTC)
