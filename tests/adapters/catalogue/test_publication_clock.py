"""The publication clock (shared/adapters/catalogue/publication_clock.py) against the test
stack's PostgreSQL: dates strictly increasing, and a stamp waits for the commit of the
transaction that took the previous one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from shared.adapters.catalogue import publication_clock

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
US = timedelta(microseconds=1)


def _stamp_committed(db_url: str, at: datetime) -> datetime:
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        return publication_clock.stamp(conn, at)


def test_a_date_is_the_callers_unless_an_equal_or_later_one_was_given(
        db_url: str, clean_catalogue: None) -> None:
    assert _stamp_committed(db_url, T0) == T0
    assert _stamp_committed(db_url, T0 + 5 * US) == T0 + 5 * US
    assert _stamp_committed(db_url, T0 + 5 * US) == T0 + 6 * US  # a tie: just after
    assert _stamp_committed(db_url, T0 - timedelta(seconds=3)) == T0 + 7 * US  # a slow clock


def test_a_stamp_waits_for_the_commit_of_the_one_before_and_comes_after_it(
        db_url: str, clean_catalogue: None) -> None:
    """The second publication read its clock first (an earlier date) but the first one
    holds the clock: it gets a later date, once the first has committed."""
    stamped: list[datetime] = []
    with psycopg.connect(db_url, autocommit=True) as first, first.transaction():
        first_date = publication_clock.stamp(first, T0)
        waiter = threading.Thread(
            target=lambda: stamped.append(_stamp_committed(db_url, T0 - timedelta(seconds=1))))
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and stamped == []  # waiting for `first` to end
        visible = first.execute("SELECT last FROM publication_clock").fetchone()
    waiter.join(10)
    assert not waiter.is_alive()
    assert first_date == T0 and visible == (T0,)
    assert stamped == [T0 + US]


def test_a_stamp_outside_a_transaction_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(RuntimeError, match="outside a transaction"):
            publication_clock.stamp(conn, T0)
