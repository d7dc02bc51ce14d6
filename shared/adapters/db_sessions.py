"""The check a connection pool runs on a PostgreSQL session before handing it out."""

from __future__ import annotations

import select

import psycopg
from psycopg_pool import ConnectionPool


def check_session(conn: psycopg.Connection) -> None:
    """Raise if a pooled session died since its last use, without a round trip while it
    is quiet. An idle session's socket has nothing to read unless the server said
    something: it closed the session (a restart, a failover, a terminated backend: a FATAL
    message, then EOF) or sent a notice; only then is the session made to answer, and the
    pool replaces it if it cannot. The empty query psycopg_pool's own check sends cost one
    round trip per checkout: ~5 per ingested file in the functions, more in the router."""
    if conn.closed or select.select([conn.fileno()], [], [], 0)[0]:
        ConnectionPool.check_connection(conn)
