"""notify over real HTTP: CloudEvents posted to the notify function (binary mode, as the
broker sends them), subscriptions made through prip, notifications received by an HTTP
endpoint this test runs. Exactly one delivered notification per subscription and product,
whatever the redeliveries; retries recorded; paused and non-matching get nothing."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from flask import Flask, Response, request
from psycopg.rows import dict_row
from pydantic import SecretStr
from werkzeug.serving import make_server

from events import envelope, types
from events.bindings import to_http_binary
from events.products import ProductEvicted, ProductPublished
from shared.adapters import endpoint_secrets
from shared.core.s1time import OPEN_END
from tests.prip.catalogue import BY_NUMBER, NAME, pid, t
from tests.prip.conftest import TEST_ENV, serve, stop

pytestmark = pytest.mark.usefixtures("seeded")
ATTEMPTS = int(TEST_ENV["AUXIP_NOTIFY_ATTEMPTS"])
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class Receiver:
    """An endpoint of subscribers: records every POST; some paths fail on purpose."""

    base: str = ""
    calls: list[tuple[str, dict, dict]] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> a 307's Location
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("receiver")

        @app.post("/<name>")
        def receive(name: str) -> Response:
            with self.lock:
                self.calls.append((name, dict(request.headers), request.get_json()))
                if name == "down":
                    return Response("broken", status=500)
                if name in self.redirects:
                    return Response(status=307, headers={"Location": self.redirects[name]})
                if self.failures_left.get(name, 0) > 0:
                    self.failures_left[name] -= 1
                    return Response("busy", status=503)
            return Response(status=204)

        return app

    def bodies(self, name: str) -> list[dict]:
        return [body for path, _, body in self.calls if path == name]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = serve(found.app())
    found.base = f"http://127.0.0.1:{server.port}"
    yield found
    stop(server)


def published(number: int) -> tuple[dict[str, str], bytes]:
    p = BY_NUMBER[number]
    event = envelope.build(
        types.PRODUCT_PUBLISHED,
        ProductPublished(product_id=p.id, name=p.name, product_type=p.product_type,
                         platform_serial=p.unit, content_length=p.size,
                         content_start=t(p.start),
                         content_end=OPEN_END if p.end is None else t(p.end),
                         origin_date=t(p.origin), publication_date=t(p.published or p.origin),
                         eviction_date=OPEN_END),
        source="/auxip/publish", subject=p.name,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"published:{p.id}")))
    return to_http_binary(event)


def evicted(number: int) -> tuple[dict[str, str], bytes]:
    p = BY_NUMBER[number]
    event = envelope.build(types.PRODUCT_EVICTED,
                           ProductEvicted(product_id=p.id, name=p.name,
                                          product_type=p.product_type,
                                          evicted_at=datetime.now(UTC)),
                           source="/auxip/evict", subject=p.name)
    return to_http_binary(event)


def deliver(notify_function, event: tuple[dict[str, str], bytes]) -> None:
    headers, body = event
    answer = httpx.post(f"{notify_function.base}/", headers=headers, content=body, timeout=60)
    assert answer.status_code == 200, answer.text  # also when an endpoint keeps failing


def attempts(settings, subscription_id: str, number: int) -> list[tuple[int, str, int | None]]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT attempt, status, http_status FROM notifications WHERE subscription_id = %s"
            " AND product_id = %s ORDER BY attempt", (uuid.UUID(subscription_id), pid(number))
        ).fetchall()
    return [(r["attempt"], r["status"], r["http_status"]) for r in rows]


def subscribe(api, receiver: Receiver, user: str, endpoint: str, filter_param: str,
              **extra: str) -> str:
    answer = api.request("POST", "Subscriptions", user, json={
        "FilterParam": filter_param, "NotificationEndpoint": f"{receiver.base}/{endpoint}",
        **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()["Id"]


CAL = ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
       "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')")


def test_notifications(api, receiver, notify_function, settings):
    orbit = subscribe(api, receiver, "bob", "orbit", "contains(Name,'AUX_POEORB')",
                      NotificationEpUsername="hook", NotificationEpPassword="hook-pw")
    cal = subscribe(api, receiver, "carol", "cal", CAL)
    paused = subscribe(api, receiver, "bob", "paused", "", Status="paused")
    flaky = subscribe(api, receiver, "carol", "flaky", "startswith(Name,'S1A')")
    down = subscribe(api, receiver, "sam", "down", "contains(Name,'AUX_POEORB')")
    on_eviction = subscribe(api, receiver, "bob", "evicted", "", SubscriptionEvent="deleted")
    receiver.failures_left["flaky"] = 2

    deliver(notify_function, published(14))  # S1A AUX_POEORB
    deliver(notify_function, published(5))  # S1B AUX_CAL
    deliver(notify_function, published(10))  # S1_ AUX_WND: only the paused one wants it

    assert receiver.bodies("orbit") == [{
        "@odata.context": "$metadata#Notification", "SubscriptionEvent": "created",
        "ProductId": str(pid(14)), "ProductName": NAME[14], "SubscriptionId": orbit,
        "NotificationDate": receiver.bodies("orbit")[0]["NotificationDate"]}]
    assert DATE.fullmatch(receiver.bodies("orbit")[0]["NotificationDate"])
    orbit_headers = next(h for p, h, _ in receiver.calls if p == "orbit")
    assert orbit_headers["Authorization"] == "Basic " + base64.b64encode(b"hook:hook-pw").decode()
    assert [b["ProductId"] for b in receiver.bodies("cal")] == [str(pid(5))]
    assert "Authorization" not in next(h for p, h, _ in receiver.calls if p == "cal")
    assert [b["ProductId"] for b in receiver.bodies("flaky")] == [str(pid(14))] * 3
    assert receiver.bodies("paused") == [] and receiver.bodies("evicted") == []
    assert len(receiver.bodies("down")) == ATTEMPTS

    assert attempts(settings, orbit, 14) == [(1, "delivered", 204)]
    assert attempts(settings, flaky, 14) == [(1, "failed", 503), (2, "failed", 503),
                                             (3, "delivered", 204)]
    assert attempts(settings, down, 14) == [(n, "failed", 500) for n in range(1, ATTEMPTS + 1)]
    assert attempts(settings, cal, 14) == [] and attempts(settings, paused, 10) == []
    assert api.get(f"Subscriptions({orbit})", "bob").json()["LastNotificationDate"] is not None
    assert api.get(f"Subscriptions({down})", "sam").json()["LastNotificationDate"] is None

    # The broker delivers the same event again: nothing new for those who got it; the
    # endpoint that never answered is tried again, its attempts numbered on.
    calls_before = len(receiver.calls)
    deliver(notify_function, published(14))
    new = [p for p, _, _ in receiver.calls[calls_before:]]
    assert new == ["down"] * ATTEMPTS
    assert attempts(settings, down, 14)[-1] == (2 * ATTEMPTS, "failed", 500)
    assert attempts(settings, orbit, 14) == [(1, "delivered", 204)]

    # The same event twice at once: still one notification.
    calls_before = len(receiver.calls)
    with ThreadPoolExecutor(2) as both:
        list(both.map(lambda _: deliver(notify_function, published(15)), range(2)))
    fresh = [(p, b["ProductId"]) for p, _, b in receiver.calls[calls_before:] if p != "down"]
    assert sorted(fresh) == [("flaky", str(pid(15))), ("orbit", str(pid(15)))]

    # Resumed: nothing of the past is replayed, the next product is notified.
    assert api.request("PATCH", f"Subscriptions({paused})", "bob",
                       json={"Status": "running"}).status_code == 200
    assert receiver.bodies("paused") == []
    deliver(notify_function, published(8))
    assert [b["ProductId"] for b in receiver.bodies("paused")] == [str(pid(8))]
    # Cancelled: nothing any more.
    assert api.request("PATCH", f"Subscriptions({paused})", "bob",
                       json={"Status": "cancelled"}).status_code == 200
    deliver(notify_function, published(12))
    assert [b["ProductId"] for b in receiver.bodies("paused")] == [str(pid(8))]

    # Eviction notifies the subscriptions to `deleted` (102 is evicted in the catalogue).
    deliver(notify_function, evicted(102))
    assert [(b["SubscriptionEvent"], b["ProductId"]) for b in receiver.bodies("evicted")] == [
        ("deleted", str(pid(102)))]
    assert on_eviction and len(receiver.bodies("orbit")) == 2


def test_unpublished_products_are_not_notified(api, receiver, notify_function):
    subscribe(api, receiver, "carol", "all", "")
    before = len(receiver.calls)
    deliver(notify_function, published(101))  # packaged, not published
    assert [p for p, _, _ in receiver.calls[before:]] == []


def test_a_password_no_key_opens_fails_the_delivery_until_the_keys_are_fixed(
        api, receiver, notify_function, settings):
    sid = subscribe(api, receiver, "bob", "sealed", "contains(Name,'AUX_POEORB')",
                    NotificationEpUsername="hook", NotificationEpPassword="sealed-pw")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        [good] = conn.execute("SELECT notification_password FROM subscriptions WHERE id = %s",
                              (uuid.UUID(sid),)).fetchone()
        # As if sealed under a key the operator has since removed from AUXIP_SECRET_KEYS.
        lost_key = SecretStr(endpoint_secrets.new_key())
        conn.execute("UPDATE subscriptions SET notification_password = %s WHERE id = %s",
                     (endpoint_secrets.seal("sealed-pw", lost_key), uuid.UUID(sid)))
        deliver(notify_function, published(14))
        assert receiver.bodies("sealed") == []  # never sent without its credentials
        [row] = conn.execute("SELECT status, http_status, error FROM notifications"
                             " WHERE subscription_id = %s", (uuid.UUID(sid),)).fetchall()
        assert row[:2] == ("failed", None) and "endpoint password unavailable" in row[2]

        conn.execute("UPDATE subscriptions SET notification_password = %s WHERE id = %s",
                     (good, uuid.UUID(sid)))
    deliver(notify_function, published(14))  # the operator's replay, keys fixed
    [(_, headers, body)] = [c for c in receiver.calls if c[0] == "sealed"]
    assert body["ProductId"] == str(pid(14))
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"hook:sealed-pw").decode()
    assert attempts(settings, sid, 14)[-1] == (2, "delivered", 204)


@pytest.fixture
def elsewhere_on_loopback() -> Iterator[Receiver]:
    """A receiver on 127.0.0.2, which the test env does not allow (127.0.0.1/32 only)."""
    found = Receiver()
    server = make_server("127.0.0.2", 0, found.app(), threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    found.base = f"http://127.0.0.2:{server.port}"
    yield found
    stop(server)


def test_a_denied_address_gets_nothing_and_one_failed_attempt(
        api, receiver, elsewhere_on_loopback, notify_function, settings, security_events):
    sid = subscribe(api, receiver, "carol", "ssrf", "contains(Name,'AUX_POEORB')")
    target = f"{elsewhere_on_loopback.base}/ssrf"
    # It answers: only the guard keeps notify from posting there.
    assert httpx.post(f"{elsewhere_on_loopback.base}/probe", json={}, timeout=10
                      ).status_code == 204
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # As if stored before the creation check existed, or by hand.
        conn.execute("UPDATE subscriptions SET notification_endpoint = %s WHERE id = %s",
                     (target, uuid.UUID(sid)))
        deliver(notify_function, published(14))
        assert elsewhere_on_loopback.bodies("ssrf") == [] and receiver.bodies("ssrf") == []
        [row] = conn.execute("SELECT attempt, status, http_status, error FROM notifications"
                             " WHERE subscription_id = %s", (uuid.UUID(sid),)).fetchall()
    assert row[:3] == (1, "failed", None)  # one attempt, not retried
    assert row[3].startswith("endpoint refused: ")
    assert "127.0.0.2 is in the denied network 127.0.0.0/8" in row[3]
    event = security_events.one("auxip.endpoint.refused", auxip__subscription_id=sid)
    assert event["auxip.via"] == "notification" and event["event.outcome"] == "failure"
    assert "127.0.0.2 is in the denied network" in event["event.reason"]
    assert event["auxip.endpoint"] == target
    assert api.get(f"Subscriptions({sid})", "carol").json()["LastNotificationDate"] is None
    deliver(notify_function, published(14))  # a replay is refused again
    assert attempts(settings, sid, 14) == [(1, "failed", None), (2, "failed", None)]
    assert [p for p, _, _ in elsewhere_on_loopback.calls] == ["probe"]


def test_a_name_that_does_not_resolve_is_retried_not_refused(
        api, receiver, notify_function, settings):
    sid = subscribe(api, receiver, "carol", "unresolved", "contains(Name,'AUX_POEORB')")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE subscriptions SET notification_endpoint = %s WHERE id = %s",
                     ("http://no-such-host.invalid/hook", uuid.UUID(sid)))
        deliver(notify_function, published(14))
        errors = [e for (e,) in conn.execute(
            "SELECT error FROM notifications WHERE subscription_id = %s ORDER BY attempt",
            (uuid.UUID(sid),))]
    assert attempts(settings, sid, 14) == [(n, "failed", None) for n in range(1, ATTEMPTS + 1)]
    assert all("ConnectError" in e and "refused" not in e for e in errors), errors


@pytest.mark.parametrize("to", ["elsewhere", "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_is_a_failed_attempt_not_followed(
        api, receiver, elsewhere_on_loopback, notify_function, settings, to):
    """The endpoint is allowed; where it redirects is not (127.0.0.2, the metadata server):
    one failed attempt naming the Location, nothing sent there."""
    where = f"{elsewhere_on_loopback.base}/ssrf" if to == "elsewhere" else to
    path = f"moved-{uuid.uuid4().hex[:8]}"
    receiver.redirects[path] = where
    sid = subscribe(api, receiver, "carol", path, "contains(Name,'AUX_POEORB')")
    deliver(notify_function, published(14))
    assert attempts(settings, sid, 14) == [(1, "failed", 307)]  # a 3xx is not retried
    with psycopg.connect(settings.database_url) as conn:
        [(error,)] = conn.execute("SELECT error FROM notifications WHERE subscription_id = %s",
                                  (uuid.UUID(sid),)).fetchall()
    assert error == f"HTTP 307: redirect to {where} not followed"
    assert elsewhere_on_loopback.calls == [] and len(receiver.bodies(path)) == 1
