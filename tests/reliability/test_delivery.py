"""At-least-once delivery, taken at its word: events delivered twice, at once, out of
order and long after change nothing; an event no subscriber can ever take ends in the
dead letters after its retries while the others flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from cloudevents.http import CloudEvent

from devstack.stack import up as stack_up
from devstack.stack.up import StackInfo
from events import envelope, types
from events.files import FileArrived
from shared.adapters import outbox, storage
from tests.reliability import clients, end_state, orbits

pytestmark = pytest.mark.e2e

# Which function each event type goes to, for deliveries that bypass the router.
CONSUMER = {types.FILE_ARRIVED: "ingest", types.PRODUCT_INGESTED: "package",
            types.PRODUCT_PACKAGED: "publish", types.PRODUCT_PUBLISHED: "notify"}
# Latest stage first: every event arrives after the ones it caused.
REVERSED = [types.PRODUCT_PUBLISHED, types.PRODUCT_PACKAGED, types.PRODUCT_INGESTED,
            types.FILE_ARRIVED]


def _snapshot(info: StackInfo) -> dict:
    """Everything a redelivery could wrongly change."""
    s = info.settings
    s3 = storage.client(s)
    return {
        "products": end_state.query(s, "SELECT * FROM products ORDER BY id"),
        "journal": end_state.query(s, "SELECT id, type, subject, data FROM event_journal"
                                      " ORDER BY id"),
        "notifications": end_state.query(s, "SELECT subscription_id, product_id, status"
                                            " FROM notifications ORDER BY 1, 2"),
        "rejections": end_state.query(s, "SELECT * FROM rejections"),
        "dead_letters": end_state.query(s, "SELECT * FROM dead_letters"),
        "transfers": end_state.query(s, "SELECT * FROM transfers"),
        "archive": sorted((o.key, o.etag) for o in storage.list_listed(s3, s.archive_bucket)),
        "inbox": list(storage.list_keys(s3, s.inbox_bucket)),
        "quarantine": list(storage.list_keys(s3, s.quarantine_bucket)),
    }


def _journalled(info: StackInfo, names: list[str]) -> dict[str, list[CloudEvent]]:
    rows = end_state.query(info.settings, "SELECT * FROM event_journal WHERE subject = ANY(%s)",
                           names)
    by_type: dict[str, list[CloudEvent]] = {t: [] for t in REVERSED}
    for row in rows:
        if row["type"] in by_type:
            by_type[row["type"]].append(outbox.event_from_row(row))
    return by_type


def _wait_routed(info: StackInfo, event_ids: list[str], since: str) -> None:
    """Until every delivery of those events received since `since` is finished."""
    def pending() -> list[dict]:
        return end_state.query(
            info.settings,
            "SELECT e.event_id, d.trigger, d.status FROM router.deliveries d"
            " JOIN router.events e ON e.seq = d.event_seq WHERE e.event_id = ANY(%s)"
            " AND e.received_at >= %s::timestamptz AND d.status <> 'delivered'",
            event_ids, since)
    end_state.wait_until("the redelivered events to be delivered", lambda: pending() == [],
                         timeout_s=120, report=pending)


def test_duplicated_reordered_and_late_events_change_nothing(fresh: StackInfo) -> None:
    s = fresh.settings
    files = orbits.batch(8, epoch=2)
    names = [name for name, _ in files]
    with clients.NotificationSink().serving() as sink:
        clients.subscribe(fresh, "bob", sink.url)
        orbits.Uploader(s, files).start().join(60)
        end_state.settle(fresh, names, timeout_s=120)
        end_state.wait_until("the notifications", lambda: sink.names() == set(names),
                             report=sink.names)
        before = _snapshot(fresh)
        events = _journalled(fresh, names)
        assert {t: len(e) for t, e in events.items()} == {t: len(names) for t in REVERSED}

        # Late, out of order and twice, through the router as the broker would redeliver.
        since = end_state.query(s, "SELECT now()::text AS t")[0]["t"]
        for kind in REVERSED:
            for event in events[kind] * 2:
                answer = clients.post_event(fresh.layout.router_url + "/", event)
                assert answer.status_code == 202, answer.text
        # And twice at once, straight to each consumer (two deliveries racing).
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda event: clients.post_event(
                    fresh.layout.function_url(CONSUMER[event["type"]]) + "/", event),
                [event for kind in REVERSED for event in events[kind] for _ in range(2)]))
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers
                                                            if a.status_code != 200][:3]
        _wait_routed(fresh, [e["id"] for kind in REVERSED for e in events[kind]], since)
        after = _snapshot(fresh)
        assert sink.twice() == []

    for part in before:
        assert after[part] == before[part], part


def test_a_poison_event_is_dead_lettered_while_the_others_flow(fresh: StackInfo) -> None:
    s = fresh.settings
    # Valid by the event's schema, but no S3 bucket can have that name: the ingest
    # function fails on it (500) however often it is delivered.
    poison = envelope.build(
        types.FILE_ARRIVED,
        FileArrived(bucket="no such bucket!", key=orbits.batch(1, epoch=3)[0][0], size=10,
                    arrived_at=datetime.now(UTC)),
        source="/tests/reliability", subject="poison", event_id=f"poison-{uuid.uuid4()}")
    answer = clients.post_event(fresh.layout.router_url + "/", poison)
    assert answer.status_code == 202, answer.text
    files = orbits.batch(20, epoch=4)
    orbits.Uploader(s, files).start().join(60)

    end_state.settle(fresh, [name for name, _ in files], timeout_s=120)
    end_state.wait_until(
        "the poison event in the dead letters",
        lambda: end_state.query(s, "SELECT 1 FROM dead_letters WHERE event_id = %s",
                                poison["id"]) != [], timeout_s=90)
    letter = end_state.query(s, "SELECT * FROM dead_letters WHERE event_id = %s",
                             poison["id"])
    assert len(letter) == 1
    assert letter[0]["type"] == types.FILE_ARRIVED
    assert letter[0]["subscriber"].startswith(fresh.layout.function_url("ingest"))
    assert letter[0]["error"].startswith("HTTP 500")
    assert letter[0]["event"]["data"]["bucket"] == "no such bucket!"
    # Delivered to the sink after every retry the Broker's delivery spec allows.
    attempts = end_state.query(
        s, "SELECT count(*) AS n FROM router.deliveries d JOIN router.events e"
           " ON e.seq = d.event_seq WHERE e.event_id = %s AND d.status = 'dead'",
        poison["id"])
    assert attempts[0]["n"] == 1
    # Operators see it where the router's documentation says.
    listed = subprocess.run(
        [sys.executable, "-m", "devstack.router", "--failed", "--limit", "100000"],
        env={**os.environ, **stack_up.env(s)}, capture_output=True, text=True, timeout=60,
        check=True, cwd=stack_up.REPO)
    dead = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    assert any(d["event_id"] == poison["id"] and d["status"] == "dead" for d in dead)
    end_state.assert_published_exactly_once(s, [name for name, _ in files])
    end_state.assert_nothing_orphaned(s)
