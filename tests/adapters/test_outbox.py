"""The outbox: journalled with the change, sent after commit, re-sent after a crash."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events import envelope, types
from events.files import FileArrived
from shared.adapters import outbox
from shared.adapters.settings import Settings


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    status = 202

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broker() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 202})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", handler
    server.shutdown()


@pytest.fixture
def pool(settings: Settings, clean_catalogue: None) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.database_url, kwargs={"autocommit": True}) as p:
        yield p


def _send(pool: ConnectionPool, url: str, event: object) -> int:
    with pool.connection() as conn:
        return outbox.send(conn, url, [event["id"]])  # type: ignore[index]


def _event(key: str) -> object:
    return envelope.build(types.FILE_ARRIVED,
                          FileArrived(bucket="b", key=key, size=1, arrived_at=datetime.now(UTC)),
                          source="/test", subject=key, extensions={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})


def test_event_is_sent_after_commit_in_binary_mode(pool: ConnectionPool, broker) -> None:  # type: ignore[no-untyped-def]
    url, received = broker
    event = _event("a")
    with pool.connection() as conn, conn.transaction():
        assert outbox.record(conn, event)
        assert not outbox.record(conn, event)  # same id: journalled once
    assert _send(pool, url, event) == 1
    [(headers, body)] = received.received
    assert headers["ce-id"] == event["id"] and headers["ce-type"] == types.FILE_ARRIVED
    assert headers["ce-traceparent"] == event["traceparent"]
    assert json.loads(body)["key"] == "a"
    assert _send(pool, url, event) == 0  # sent already


def test_a_recorded_event_goes_as_it_would_from_its_row(pool: ConnectionPool, broker) -> None:  # type: ignore[no-untyped-def]
    # send_recorded posts the event held in memory: the broker must see what `send` would
    # have rebuilt from the journal row, and the row must say it went.
    url, received = broker
    kept, direct = _event("c"), _event("d")
    with pool.connection() as conn, conn.transaction():
        assert outbox.record(conn, kept) and outbox.record(conn, direct)
    assert _send(pool, url, kept) == 1
    with pool.connection() as conn:
        assert outbox.send_recorded(conn, url, [direct]) == 1
    (from_row, row_body), (from_memory, memory_body) = received.received
    assert json.loads(row_body).keys() == json.loads(memory_body).keys()
    assert json.loads(memory_body) == direct.data  # type: ignore[attr-defined]
    assert {k for k in from_row if k.startswith("ce-")} == {
        k for k in from_memory if k.startswith("ce-")}
    assert from_memory["ce-id"] == direct["id"]
    assert from_memory["ce-traceparent"] == direct["traceparent"]
    assert _send(pool, url, direct) == 0  # marked sent: the sweep leaves it alone
    assert outbox.send_pending(pool, url, older_than_s=0) == 0


def test_rolled_back_change_sends_nothing(pool: ConnectionPool, broker) -> None:  # type: ignore[no-untyped-def]
    url, received = broker
    event = _event("b")
    with pytest.raises(RuntimeError), pool.connection() as conn, conn.transaction():
        outbox.record(conn, event)
        raise RuntimeError("the catalogue change failed")
    assert _send(pool, url, event) == 0
    assert received.received == []


def test_crash_between_commit_and_send_is_mended_by_the_sweep(pool: ConnectionPool, broker,
                                                              settings: Settings) -> None:  # type: ignore[no-untyped-def]
    url, received = broker
    events = [_event(f"k{i}") for i in range(3)]
    with pool.connection() as conn, conn.transaction():
        for event in events:
            outbox.record(conn, event)
    # ... the process dies here: nothing was sent.
    assert outbox.send_pending(pool, url, older_than_s=3600) == 0  # too young to be stale
    assert outbox.send_pending(pool, url, older_than_s=0) == 3
    assert sorted(h["ce-id"] for h, _ in received.received) == sorted(e["id"] for e in events)
    assert outbox.send_pending(pool, url, older_than_s=0) == 0


def test_broker_down_keeps_the_event_for_later(pool: ConnectionPool, broker,
                                               settings: Settings) -> None:  # type: ignore[no-untyped-def]
    url, received = broker
    received.status = 503
    event = _event("c")
    with pool.connection() as conn, conn.transaction():
        outbox.record(conn, event)
    assert _send(pool, url, event) == 0
    with psycopg.connect(settings.database_url) as conn:
        attempts, error, sent = conn.execute(
            "SELECT send_attempts, last_error, sent_at FROM event_journal").fetchone()
    assert (attempts, sent) == (1, None) and "503" in error
    received.status = 202
    assert outbox.send_pending(pool, url, older_than_s=0) == 1


@pytest.mark.parametrize("poison", [{"specversion": "9.9"}, {"broken": None}],
                         ids=["unbuildable", "unencodable"])
def test_a_poison_row_is_recorded_and_the_rows_after_it_still_go(
        pool: ConnectionPool, broker, settings: Settings, poison: dict) -> None:  # type: ignore[no-untyped-def]
    url, received = broker
    bad, good = _event("poison"), _event("good")
    with pool.connection() as conn, conn.transaction():
        outbox.record(conn, bad)
        outbox.record(conn, good)
        conn.execute("UPDATE event_journal SET extensions = extensions || %s::jsonb"
                     " WHERE id = %s", (json.dumps(poison), bad["id"]))
    assert outbox.send_pending(pool, url, older_than_s=0) == 1
    assert [h["ce-id"] for h, _ in received.received] == [good["id"]]
    with psycopg.connect(settings.database_url) as conn:
        attempts, error, sent = conn.execute(
            "SELECT send_attempts, last_error, sent_at FROM event_journal WHERE id = %s",
            (bad["id"],)).fetchone()
    assert (attempts, sent) == (1, None) and error.startswith("cannot ")
    # Tried again by the next sweeps, still recorded, never sent broken.
    assert outbox.send_pending(pool, url, older_than_s=0) == 0
    assert len(received.received) == 1


def test_a_change_and_its_events_are_journalled_in_one_statement(pool: ConnectionPool) -> None:
    # record_with: the events are journalled exactly when the change touched a row.
    first, second, third = _event("w1"), _event("w2"), _event("w3")
    change = ("INSERT INTO rejections (name, source_bucket, source_key, quarantine_key,"
              " reason, detail, event_id) VALUES (%s, 'b', 'k', 'q', 'r', 'd', %s)"
              " ON CONFLICT DO NOTHING RETURNING 1")
    with pool.connection() as conn:
        assert outbox.record_with(conn, change, ("one", "ev-1"), [first, second, first]) == {
            first["id"], second["id"]}  # type: ignore[index]
        # The change touched no row: nothing journalled.
        assert outbox.record_with(conn, "SELECT 1 WHERE false", (), [third]) is None
        # Touched again, with an event journalled before: only the new one is said new.
        assert outbox.record_with(conn, change.replace("ON CONFLICT DO NOTHING ", ""),
                                  ("two", "ev-2"), [second, third]) == {third["id"]}  # type: ignore[index]
        journal = conn.execute("SELECT id FROM event_journal ORDER BY recorded_at").fetchall()
    assert [r[0] for r in journal] == [first["id"], second["id"], third["id"]]  # type: ignore[index]


def test_an_event_that_cannot_be_journalled_undoes_the_change(pool: ConnectionPool) -> None:
    event = _event("w4")
    event["time"] = "not a time"  # type: ignore[index]
    with pool.connection() as conn:
        with pytest.raises(psycopg.errors.InvalidDatetimeFormat):
            outbox.record_with(conn, "INSERT INTO rejections (name, source_bucket, source_key,"
                               " quarantine_key, reason, detail, event_id) VALUES"
                               " ('x', 'b', 'k', 'q', 'r', 'd', 'e') RETURNING 1", (), [event])
        assert conn.execute("SELECT count(*) FROM rejections").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM event_journal").fetchone() == (0,)
