"""Parallel-download quota: at most N streamed downloads per user, across every prip
process and gunicorn worker.

A user has N slots, each a PostgreSQL session advisory lock `(user key, slot)` held by the
connection of the download that occupies it. A download tries the slots in turn
(`pg_try_advisory_lock`, never waits); none free means the user is at the limit. The lock
lives exactly as long as its session: when the stream ends, the client goes away or the
process dies, PostgreSQL releases it, so a crash can never leak a slot.

Each streamed download therefore holds one connection of a pool of its own, sized
AUXIP_DOWNLOAD_STREAMS_PER_PROCESS, apart from the query pool so that downloads cannot
starve catalogue queries.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

# Two-int4 advisory locks live in their own key space (the bigint form other modules use
# cannot collide); the second int says "download slot" and which one.
_SLOT_BASE = 0x51D0_0000
RETRY_AFTER_S = 5  # a download of an aux file takes seconds; asking again sooner is noise
_POOL_WAIT_S = 2.0


class Busy(Exception):
    """This process serves as many streams as it may: not the user's quota."""


def user_key(subject: str) -> int:
    """A stable int4 per user (two users sharing one, 1 in 2**32, share their slots)."""
    return int.from_bytes(hashlib.sha256(subject.encode()).digest()[:4], "big", signed=True)


class Slot:
    """A held slot; `release` is idempotent and safe from any thread."""

    def __init__(self, slots: DownloadSlots, conn: psycopg.Connection, key: int, number: int):
        self._slots = slots
        self._conn: psycopg.Connection | None = conn
        self._key = key
        self.number = number
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self._key, _SLOT_BASE + self.number))
        except psycopg.Error as error:  # the pool's reset unlocks, or drops the session
            log.warning("releasing download slot failed: %s", error)
        self._slots.give_back(conn)


def _unlock_all(conn: psycopg.Connection) -> None:
    # Safety net when a connection goes back to the pool: a session must not keep a slot.
    conn.execute("SELECT pg_advisory_unlock_all()")


class DownloadSlots:
    def __init__(self, database_url: str, *, per_user: int, streams: int) -> None:
        self.per_user = per_user
        self._pool = ConnectionPool(
            database_url, min_size=1, max_size=streams, open=True, reset=_unlock_all,
            kwargs={"autocommit": True}, name="auxip-download-slots",
            check=ConnectionPool.check_connection,  # sessions that died since their last use
        )

    def acquire(self, subject: str) -> Slot | None:
        """A free slot of this user, or None when all N are taken; Busy when this process
        has no session left for another stream."""
        try:
            conn = self._pool.getconn(timeout=_POOL_WAIT_S)
        except PoolTimeout:
            raise Busy("no download stream available in this process") from None
        key = user_key(subject)
        try:
            for number in range(self.per_user):
                row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                   (key, _SLOT_BASE + number)).fetchone()
                if row and row[0]:
                    return Slot(self, conn, key, number)
        except BaseException:
            self._pool.putconn(conn)
            raise
        self._pool.putconn(conn)
        return None

    def give_back(self, conn: psycopg.Connection) -> None:
        self._pool.putconn(conn)

    def close(self) -> None:
        self._pool.close()
