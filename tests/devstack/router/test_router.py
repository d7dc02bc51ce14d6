"""The router end to end: real HTTP in and out over loopback, real PostgreSQL."""

from __future__ import annotations

import base64
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from devstack.router import ping
from devstack.router.ping import PingScheduler
from devstack.router.settings import RouterSettings
from tests.devstack.router.conftest import broker, deliveries, trigger, wait_until_settled
from tests.devstack.router.subscribers import Received, post_event

CLIENT = httpx.Client(trust_env=False, timeout=10)


def test_filters_route_each_event_to_the_matching_triggers(start_router, subscribers, clean_database):
    names = ["exact", "prefix", "suffix", "all", "any", "not", "cesql", "legacy"]
    subs = {name: subscribers() for name in names}
    manifest = broker() + "".join([
        trigger("exact", subs["exact"].url, "  filters:\n    - exact: {type: org.auxip.file.arrived.v1}"),
        trigger("prefix", subs["prefix"].url, "  filters:\n    - prefix: {type: org.auxip.product.}"),
        trigger("suffix", subs["suffix"].url, "  filters:\n    - suffix: {subject: .EOF}"),
        trigger("all", subs["all"].url,
                "  filters:\n    - all:\n      - prefix: {type: org.auxip.}\n      - exact: {mission: s1a}"),
        trigger("any", subs["any"].url,
                "  filters:\n    - any:\n      - exact: {type: org.auxip.file.rejected.v1}\n"
                "      - exact: {type: org.auxip.transfer.failed.v1}"),
        trigger("not", subs["not"].url, "  filters:\n    - not: {prefix: {type: org.auxip.}}"),
        trigger("cesql", subs["cesql"].url,
                "  filters:\n    - cesql: \"LOWER(subject) LIKE 's1%.safe' AND EXISTS mission\""),
        trigger("legacy", subs["legacy"].url,
                "  filter:\n    attributes: {type: org.auxip.product.published.v1, mission: ''}"),
    ])
    router = start_router(manifest)
    events = [
        ("e1", "org.auxip.file.arrived.v1", "S1A_AUX_CAL.SAFE", {"mission": "s1a"}),
        ("e2", "org.auxip.product.ingested.v1", "S1B_OPER_AUX_RESORB.EOF", {}),
        ("e3", "org.auxip.file.rejected.v1", "x", {}),
        ("e4", "com.example.other", "y.EOF", {}),
        ("e5", "org.auxip.product.published.v1", "S1__AUX_WND.SAFE", {"mission": "s1b"}),
        ("e6", "org.auxip.product.published.v1", "z", {}),
    ]
    for event_id, event_type, subject, extensions in events:
        response = post_event(router.url, event_type, event_id=event_id, subject=subject,
                              extensions=extensions, client=CLIENT)
        assert response.status_code == 202, response.text
    assert wait_until_settled(clean_database) == {"delivered": 12}
    expected = {
        "exact": ["e1"],
        "prefix": ["e2", "e5", "e6"],
        "suffix": ["e2", "e4"],
        "all": ["e1"],
        "any": ["e3"],
        "not": ["e4"],
        "cesql": ["e1", "e5"],
        "legacy": ["e5"],
    }
    assert {name: sorted(sub.ids()) for name, sub in subs.items()} == expected


def test_binary_delivery_keeps_attributes_extensions_and_data(start_router, subscribers, clean_database):
    sub = subscribers()
    router = start_router(broker() + trigger("all", sub.url))
    structured = {
        "specversion": "1.0", "id": "s-1", "source": "/auxip/ingest", "type": "org.auxip.product.ingested.v1",
        "subject": "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE", "time": "2024-05-01T12:00:00.123Z",
        "datacontenttype": "application/json", "dataschema": "urn:auxip:schema:x",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "sequence": 7,
        "urgent": True, "data": {"name": "S1A", "sizes": [1, 2], "unicode": "Δt"},
    }
    assert CLIENT.post(router.url, json=structured,
                       headers={"content-type": "application/cloudevents+json; charset=utf-8"}).status_code == 202
    raw = bytes(range(256))
    assert post_event(router.url, "org.example.raw", event_id="b-1", data=raw,
                      content_type="application/octet-stream", extensions={"partitionkey": "k1"},
                      client=CLIENT).status_code == 202
    first, second = sorted(sub.wait_for(2), key=lambda r: r.headers["ce-id"])
    assert first.headers["ce-id"] == "b-1"
    assert first.body == raw
    assert first.headers["content-type"] == "application/octet-stream"
    assert first.headers["ce-partitionkey"] == "k1"
    assert first.headers["prefer"] == "reply"
    headers = second.headers
    for name in ("id", "source", "type", "subject", "time", "dataschema", "traceparent"):
        assert headers[f"ce-{name}"] == structured[name], name
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-sequence"] == "7" and headers["ce-urgent"] == "true"
    assert headers["content-type"] == "application/json"
    assert json.loads(second.body) == structured["data"]
    assert wait_until_settled(clean_database) == {"delivered": 2}


def test_retries_follow_the_backoff_policy(start_router, subscribers, clean_database):
    def fail_twice(_request: Received, index: int) -> tuple[int, dict[str, str], bytes]:
        return (503, {}, b"busy") if index < 2 else (200, {}, b"")

    exponential, linear = subscribers(fail_twice), subscribers(fail_twice)
    manifest = broker() + trigger(
        "exponential", exponential.url,
        delivery="  delivery:\n    retry: 3\n    backoffPolicy: exponential\n    backoffDelay: PT0.5S",
    ) + trigger(
        "linear", linear.url,
        delivery="  delivery:\n    retry: 3\n    backoffPolicy: linear\n    backoffDelay: PT0.5S",
    )
    router = start_router(manifest)
    assert post_event(router.url, "org.example.flaky", event_id="r-1", client=CLIENT).status_code == 202
    for sub, expected in ((exponential, [1.0, 2.0]), (linear, [0.5, 1.0])):
        arrivals = [r.at for r in sub.wait_for(3)]
        gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
        for gap, want in zip(gaps, expected):
            # Delay = backoffDelay * 2^n (exponential) or * n (linear), n = 1, 2: never early,
            # and late only by scheduling overhead (up to ~0.4 s on a loaded 2-core machine;
            # the other policy's second gap would be 1 s off, so 0.6 s still tells them apart).
            assert want - 0.01 <= gap <= want + 0.6, (gaps, expected)
        assert {r.event_id for r in sub.received} == {"r-1"}
    assert wait_until_settled(clean_database) == {"delivered": 2}
    assert {d["attempts"] for d in deliveries(clean_database)} == {3}


def test_exhausted_retries_go_to_the_dead_letter_sink_with_knative_error_extensions(
    start_router, subscribers, clean_database
):
    failing = subscribers(lambda _r, _i: (500, {"kne-reason": "disk full"}, b"boom"))
    refusing = subscribers(lambda _r, _i: (400, {}, b"bad event"))
    dead_letters = subscribers()
    manifest = broker(
        f"    retry: 2\n    backoffPolicy: exponential\n    backoffDelay: PT0.02S\n"
        f"    deadLetterSink:\n      uri: {dead_letters.url}"
    ) + trigger("failing", failing.url, "  filters:\n    - exact: {type: org.example.a}") + trigger(
        "refusing", refusing.url, "  filters:\n    - exact: {type: org.example.b}"
    )
    router = start_router(manifest)
    assert post_event(router.url, "org.example.a", event_id="d-1", subject="s", client=CLIENT).status_code == 202
    assert post_event(router.url, "org.example.b", event_id="d-2", client=CLIENT).status_code == 202
    letters = {r.event_id: r for r in dead_letters.wait_for(2)}
    assert wait_until_settled(clean_database) == {"dead": 2}
    # 1 attempt + retry(2) retries for a retryable 500; a 400 is not retried.
    assert len(failing.received) == 3
    assert len(refusing.received) == 1
    first = letters["d-1"].headers
    assert first["ce-type"] == "org.example.a" and first["ce-subject"] == "s"
    assert first["ce-knativeerrordest"] == failing.url
    assert first["ce-knativeerrorcode"] == "500"
    assert base64.b64decode(first["ce-knativeerrordata"]) == b"boom"
    assert first["ce-reason"] == "disk full"  # kne-* response headers become extensions
    assert first["ce-auxipattempts"] == "3"  # what Knative does not say: the deadletter records it
    assert letters["d-1"].body == b'{"ok": true}'
    second = letters["d-2"].headers
    assert second["ce-knativeerrorcode"] == "400"
    assert base64.b64decode(second["ce-knativeerrordata"]) == b"bad event"
    assert second["ce-auxipattempts"] == "1"


def test_undeliverable_without_dead_letter_sink_is_kept_as_failed(start_router, subscribers, clean_database):
    gone = subscribers()
    url = gone.url
    gone.close()  # connection refused from now on
    sink_down = subscribers(lambda _r, _i: (503, {}, b""))
    failing = subscribers(lambda _r, _i: (500, {}, b""))
    manifest = broker() + trigger(
        "refused", url, "  filters:\n    - exact: {type: org.example.refused}",
        "  delivery:\n    retry: 1\n    backoffDelay: PT0.01S",
    ) + trigger(
        "sinkdown", failing.url, "  filters:\n    - exact: {type: org.example.sinkdown}",
        f"  delivery:\n    retry: 1\n    backoffDelay: PT0.01S\n    deadLetterSink:\n      uri: {sink_down.url}",
    )
    router = start_router(manifest)
    post_event(router.url, "org.example.refused", event_id="f-1", client=CLIENT)
    post_event(router.url, "org.example.sinkdown", event_id="f-2", client=CLIENT)
    assert wait_until_settled(clean_database) == {"failed": 2}
    rows = {row["event_id"]: row for row in router.store.deliveries(["failed"])}
    assert set(rows) == {"f-1", "f-2"}
    assert rows["f-1"]["attempts"] == 2 and "Connect" in rows["f-1"]["last_error"]
    assert rows["f-2"]["stage"] == "deadletter" and rows["f-2"]["error_code"] == 500
    assert len(sink_down.received) == 2  # the dead-letter sink is retried like the subscriber


def test_a_reply_event_is_routed_like_a_new_event(start_router, subscribers, clean_database):
    def reply(request: Received, _index: int) -> tuple[int, dict[str, str], bytes]:
        headers = {"ce-specversion": "1.0", "ce-id": "reply-of-" + request.headers["ce-id"],
                   "ce-source": "/replier", "ce-type": "org.example.reply", "content-type": "text/plain"}
        return 200, headers, b"derived"

    replier, consumer = subscribers(reply), subscribers()
    ignored = subscribers(lambda _r, _i: (202, {"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s",
                                                 "ce-type": "org.example.reply"}, b""))
    manifest = broker() + trigger("replier", replier.url, "  filters:\n    - exact: {type: org.example.ask}") \
        + trigger("ignored", ignored.url, "  filters:\n    - exact: {type: org.example.ask}") \
        + trigger("consumer", consumer.url, "  filters:\n    - exact: {type: org.example.reply}")
    router = start_router(manifest)
    post_event(router.url, "org.example.ask", event_id="q-1", client=CLIENT)
    (received,) = consumer.wait_for(1)
    assert received.headers["ce-id"] == "reply-of-q-1"
    assert received.headers["ce-source"] == "/replier"
    assert received.body == b"derived" and received.headers["content-type"] == "text/plain"
    assert wait_until_settled(clean_database) == {"delivered": 3}
    time.sleep(0.1)
    assert len(consumer.received) == 1  # a 202 answer is never taken as a reply


def test_requests_that_are_not_cloudevents_get_400_with_a_reason(start_router, subscribers, clean_database):
    router = start_router(broker() + trigger("all", subscribers().url))
    ok = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    cases = [
        ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
        ({k: v for k, v in ok.items() if k != "ce-id"}, b"", "missing required attribute id"),
        (ok | {"ce-specversion": "0.3"}, b"", "specversion"),
        (ok | {"ce-time": "yesterday"}, b"", "RFC 3339"),
        (ok | {"ce-Bad_Name": "x"}, b"", "lower-case"),
        ({"content-type": "application/cloudevents+json"}, b"{not json", "not JSON"),
        ({"content-type": "application/cloudevents+json"}, b"[1]", "JSON object"),
        ({"content-type": "application/cloudevents+json"},
         json.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": 1,
                     "data_base64": "AA=="}).encode(), "not both"),
        ({"content-type": "application/cloudevents+json"},
         json.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "ext": {"a": 1}}).encode(),
         "string, an integer or a boolean"),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", "batch"),
    ]
    for headers, body, reason in cases:
        response = CLIENT.post(router.url, headers=headers, content=body)
        assert response.status_code == 400, (headers, response.text)
        assert reason in response.json()["error"], (reason, response.text)
    assert CLIENT.post(router.url + "/test/nosuchbroker", headers=ok).status_code == 404
    assert CLIENT.post(router.url + "/test/default", headers=ok).status_code == 202
    assert CLIENT.put(router.url, headers=ok, content=b"").status_code == 405
    assert "POST" in CLIENT.options(router.url).headers["allow"]
    assert CLIENT.get(router.url + "/healthz").json() == {"status": "ok"}
    assert wait_until_settled(clean_database) == {"delivered": 1}


def test_concurrent_events_all_reach_every_matching_subscriber(start_router, subscribers, clean_database):
    one, two = subscribers(), subscribers()
    filters = "  filters:\n    - exact: {type: org.example.load}"
    router = start_router(broker() + trigger("one", one.url, filters) + trigger("two", two.url, filters),
                          router_workers=16)
    count = 200
    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool, httpx.Client(trust_env=False, timeout=10) as client:
        codes = list(pool.map(
            lambda i: post_event(router.url, "org.example.load", event_id=f"c-{i}", client=client).status_code,
            range(count),
        ))
    assert set(codes) == {202}
    for sub in (one, two):
        sub.wait_for(count)
    elapsed = time.monotonic() - started
    assert wait_until_settled(clean_database) == {"delivered": 2 * count}
    expected = {f"c-{i}" for i in range(count)}
    duplicates = {}
    for name, sub in (("one", one), ("two", two)):
        ids = sub.ids()
        assert set(ids) == expected
        duplicates[name] = len(ids) - len(set(ids))
    print(f"\n{count} concurrent events x 2 triggers in {elapsed:.2f}s "
          f"({2 * count / elapsed:.0f} deliveries/s), duplicates {duplicates}")


def test_a_new_event_is_dispatched_within_milliseconds(start_router, subscribers, clean_database):
    sub = subscribers()
    router = start_router(broker() + trigger("all", sub.url))
    post_event(router.url, "org.example.warmup", event_id="w", client=CLIENT)
    sub.wait_for(1)
    latencies = []
    for i in range(20):
        before = time.monotonic()
        assert post_event(router.url, "org.example.latency", event_id=f"l-{i}", client=CLIENT).status_code == 202
        received = sub.wait_for(i + 2)[-1]
        latencies.append(received.at - before)
    median = statistics.median(latencies)
    print(f"\npost -> subscriber latency: median {median * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    # What is checked is the wake-up, not speed (that is bench/'s): without it every event
    # would wait for the next poll, RouterSettings.router_poll_s (1 s) away on average 0.5 s.
    assert median < RouterSettings().router_poll_s / 4


def test_the_same_event_sent_twice_is_delivered_twice(start_router, subscribers, clean_database):
    sub = subscribers()
    router = start_router(broker() + trigger("all", sub.url))
    for _ in range(2):
        assert post_event(router.url, "org.example.dup", event_id="same", client=CLIENT).status_code == 202
    assert [r.event_id for r in sub.wait_for(2)] == ["same", "same"]


def test_pingsource_emits_ping_events_on_schedule_once_per_tick(start_router, subscribers, clean_database):
    direct, via_broker = subscribers(), subscribers()
    manifest = broker() + trigger("pings", via_broker.url,
                                  "  filters:\n    - exact: {type: dev.knative.sources.ping}") + f"""---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {{name: evict, namespace: test}}
spec:
  schedule: "*/5 * * * *"
  contentType: application/json
  data: '{{"task": "evict"}}'
  sink:
    uri: {direct.url}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {{name: poll, namespace: test}}
spec:
  schedule: "CRON_TZ=Europe/Rome 0 3 * * *"
  ceOverrides:
    extensions: {{origin: local}}
  sink:
    ref: {{apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
"""
    router = start_router(manifest)
    router.pings.stop()  # its real-time ticks must not land in the middle of this test
    evict, poll = sorted(router.topology.ping_sources, key=lambda p: p.name)
    # The real scheduler loop, on a clock set 0.3s before evict's next tick.
    tick = evict.schedule.next_after(datetime.now(UTC))
    offset = tick - datetime.now(UTC) - timedelta(seconds=0.3)
    scheduler = PingScheduler(router.store, router.topology, router.dispatcher.kick,
                              now=lambda: datetime.now(UTC) + offset)
    scheduler.start()
    try:
        (received,) = direct.wait_for(1, timeout=5)
    finally:
        scheduler.stop()
    assert received.headers["ce-type"] == "dev.knative.sources.ping"
    assert received.headers["ce-source"] == "/apis/v1/namespaces/test/pingsources/evict"
    assert received.headers["ce-time"] == tick.isoformat().replace("+00:00", "Z")
    assert received.headers["content-type"] == "application/json"
    assert json.loads(received.body) == {"task": "evict"}
    # A tick is emitted once, whoever tries again (a restart, a second router).
    assert not ping.emit(router.store, router.topology, evict, tick)
    poll_tick = poll.schedule.next_after(datetime.now(UTC))
    assert poll_tick.astimezone(poll.schedule.zone).hour == 3
    assert ping.emit(router.store, router.topology, poll, poll_tick)
    router.dispatcher.kick()
    (routed,) = via_broker.wait_for(1)
    assert routed.headers["ce-source"] == "/apis/v1/namespaces/test/pingsources/poll"
    assert routed.headers["ce-origin"] == "local" and routed.body == b""
    assert wait_until_settled(clean_database) == {"delivered": 2}
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT count(*) FROM router.ping_ticks").fetchone() == (2,)


def test_operators_can_redeliver_failed_deliveries(start_router, subscribers, clean_database):
    broken = {"yes": True}
    sub = subscribers(lambda _r, _i: (500, {}, b"") if broken["yes"] else (200, {}, b""))
    router = start_router(broker() + trigger("t", sub.url), router_poll_s=30)
    post_event(router.url, "org.example.fixme", event_id="x-1", client=CLIENT)
    assert wait_until_settled(clean_database) == {"failed": 1}
    (failed,) = router.store.deliveries(["failed"])
    broken["yes"] = False
    started = time.monotonic()
    assert router.store.redeliver([failed["id"]]) == 1
    # Woken by NOTIFY (the poll is 30s here), not by waiting.
    assert wait_until_settled(clean_database) == {"delivered": 1}
    assert time.monotonic() - started < 2
    assert sub.ids() == ["x-1", "x-1"]


def test_an_attempt_that_outlives_the_timeout_is_retried(start_router, subscribers, clean_database):
    def slow_first(_request: Received, index: int) -> tuple[int, dict[str, str], bytes]:
        if index == 0:
            time.sleep(0.6)
        return 200, {}, b""

    sub = subscribers(slow_first)
    router = start_router(broker() + trigger(
        "t", sub.url, delivery="  delivery:\n    retry: 1\n    backoffDelay: PT0.05S\n    timeout: PT0.2S"))
    post_event(router.url, "org.example.slow", event_id="t-1", client=CLIENT)
    first, second = sub.wait_for(2)
    assert 0.2 + 0.1 <= second.at - first.at < 0.6  # timeout, then backoff 0.05 * 2^1
    assert wait_until_settled(clean_database) == {"delivered": 1}
    (row,) = deliveries(clean_database)
    assert row["attempts"] == 2 and row["last_status"] == 200
