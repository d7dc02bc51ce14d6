"""The pool's check of a session: no round trip while the session is quiet, a fresh
session when the server ended the old one."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from shared.adapters.db_sessions import check_session


def _last_query(db: psycopg.Connection, pid: int) -> str:
    row = db.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert row is not None
    return row[0]


def test_a_quiet_session_is_handed_out_without_a_query(db_url: str, db: psycopg.Connection) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT 'the last thing this session did'")
        check_session(conn)
        assert _last_query(db, conn.info.backend_pid) == "SELECT 'the last thing this session did'"


def test_a_session_the_server_ended_is_replaced(db_url: str, db: psycopg.Connection) -> None:
    with ConnectionPool(db_url, min_size=1, max_size=1, kwargs={"autocommit": True},
                        check=check_session, open=True) as pool:
        with pool.connection() as conn:
            first = conn.info.backend_pid
        # What a restart or failover does to every idle session: a FATAL message, then EOF.
        assert db.execute("SELECT pg_terminate_backend(%s, 5000)", (first,)).fetchone() == (True,)
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != first
