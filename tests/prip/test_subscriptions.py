"""Subscriptions over HTTP: creation and its checks, ownership (a subscriber never sees
another's; operators see all), status changes, deletion, limits, and the audit trail."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from shared.adapters import endpoint_secrets
from shared.odata import ODataError
from shared.prip import subscriptions
from shared.prip.auth import SUBSCRIBER, Principal
from tests.prip.conftest import reset_caches

pytestmark = pytest.mark.usefixtures("seeded")

ENTITY_KEYS = {"@odata.context", "Id", "Status", "SubscriptionEvent", "FilterParam",
               "SubmissionDate", "LastNotificationDate", "NotificationEndpoint"}
FILTER = ("startswith(Name,'S1A') and Attributes/OData.CSC.StringAttribute/any(att:att/Name "
          "eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'AUX_POEORB')")
SECRET = "endpoint-Secret-4711"


def create(api, user: str, **body) -> dict:
    body.setdefault("NotificationEndpoint", "https://client.example.org/notify")
    answer = api.request("POST", "Subscriptions", user, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_create_returns_the_entity_without_credentials(api):
    answer = api.request("POST", "Subscriptions", "bob", json={
        "FilterParam": FILTER, "NotificationEndpoint": "https://client.example.org/notify",
        "NotificationEpUsername": "client", "NotificationEpPassword": SECRET,
        "SubscriptionEvent": "created", "SubscriptionType": "push",
        "@odata.type": "#OData.CSC.Subscription"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == ENTITY_KEYS
    assert body["@odata.context"] == "$metadata#Subscriptions/$entity"
    assert body["Status"] == "running" and body["SubscriptionEvent"] == "created"
    assert body["FilterParam"] == FILTER and body["LastNotificationDate"] is None
    assert body["SubmissionDate"].endswith("Z") and len(body["SubmissionDate"]) == 24
    assert SECRET not in answer.text and "client\"" not in answer.text
    assert answer.headers["Location"].endswith(f"/odata/v1/Subscriptions({body['Id']})")
    assert api.get(f"Subscriptions({body['Id']})", "bob").json() == body


def test_subscribers_see_only_their_own(api):
    bobs = create(api, "bob", FilterParam="contains(Name,'AUX_CAL')")
    carols = create(api, "carol")
    bob_ids = {s["Id"] for s in api.get("Subscriptions", "bob").json()["value"]}
    carol_ids = {s["Id"] for s in api.get("Subscriptions", "carol").json()["value"]}
    assert bobs["Id"] in bob_ids and carols["Id"] not in bob_ids
    assert carols["Id"] in carol_ids and bobs["Id"] not in carol_ids
    # Another's Id answers exactly like an unknown one.
    unknown = str(uuid.uuid4())
    for method, body in (("GET", None), ("PATCH", {"Status": "paused"}), ("DELETE", None)):
        theirs = api.request(method, f"Subscriptions({bobs['Id']})", "carol", json=body)
        nobody = api.request(method, f"Subscriptions({unknown})", "carol", json=body)
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json() == nobody.json()
    assert api.get(f"Subscriptions({bobs['Id']})", "bob").json()["Status"] == "running"
    # Operators see and manage all.
    all_ids = {s["Id"] for s in api.get("Subscriptions", "ops").json()["value"]}
    assert {bobs["Id"], carols["Id"]} <= all_ids
    paused = api.request("PATCH", f"Subscriptions({carols['Id']})", "ops",
                         json={"Status": "paused"})
    assert paused.status_code == 200 and paused.json()["Status"] == "paused"


def test_readers_and_strangers_cannot_subscribe(api):
    refused = api.request("POST", "Subscriptions", "alice",
                          json={"NotificationEndpoint": "https://x.example.org/"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert "WWW-Authenticate" in refused.headers
    assert api.request("POST", "Subscriptions", None,
                       json={"NotificationEndpoint": "https://x.example.org/"}).status_code == 401


def test_pause_resume_cancel_delete(api, settings):
    created = create(api, "bob", FilterParam="contains(Name,'AUX_WND')")
    path = f"Subscriptions({created['Id']})"
    assert api.request("PATCH", path, "bob", json={"Status": "paused"}).json()["Status"] == "paused"
    # A client sending the whole entity back (PUT) changes the Status only.
    whole = {**created, "Status": "running"}
    resumed = api.request("PUT", path, "bob", json=whole)
    assert resumed.status_code == 200 and resumed.json()["Status"] == "running"
    changed = api.request("PATCH", path, "bob", json={"Status": "paused", "FilterParam": "x"})
    assert changed.status_code == 400 and "only Status" in changed.json()["error"]["message"]
    assert api.request("PATCH", path, "bob", json={"Status": "Cancelled"}).json()["Status"] \
        == "cancelled"
    again = api.request("PATCH", path, "bob", json={"Status": "running"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "Conflict"
    deleted = api.request("DELETE", path, "bob")
    assert deleted.status_code == 204 and deleted.content == b""
    assert api.get(path, "bob").status_code == 404
    assert api.request("DELETE", path, "bob").status_code == 404

    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM audit_log WHERE subscription_id = %s ORDER BY id",
                            (uuid.UUID(created["Id"]),)).fetchall()
    assert [(r["actor"], r["action"], r["details"].get("status")) for r in rows] == [
        ("bob", "subscription.create", "running"),
        ("bob", "subscription.update", "paused"),
        ("bob", "subscription.update", "running"),
        ("bob", "subscription.update", "cancelled"),
        ("bob", "subscription.delete", "cancelled"),
    ]
    assert rows[0]["details"]["filter"] == "contains(Name,'AUX_WND')"


def test_credentials_never_reach_the_audit_trail_and_rest_sealed(api, settings):
    made = create(api, "bob", NotificationEpUsername="client", NotificationEpPassword=SECRET)
    with psycopg.connect(settings.database_url) as conn:
        text = conn.execute("SELECT string_agg(audit_log::text, ' ') FROM audit_log").fetchone()[0]
        everything = conn.execute("SELECT string_agg(subscriptions::text, ' ')"
                                  " FROM subscriptions").fetchone()[0]
        [stored] = conn.execute("SELECT notification_password FROM subscriptions WHERE id = %s",
                                (uuid.UUID(made["Id"]),)).fetchone()
    assert SECRET not in text
    # Kept for notify's Basic authentication, sealed under the stack's AUXIP_SECRET_KEYS.
    assert SECRET not in everything and stored.startswith(endpoint_secrets.PREFIX)
    assert endpoint_secrets.unseal(stored, settings.secret_keys) == SECRET
    other = SecretStr(endpoint_secrets.new_key())
    with pytest.raises(endpoint_secrets.SecretsUnavailable):
        endpoint_secrets.unseal(stored, other)


def test_a_password_is_refused_when_no_key_can_seal_it(settings):
    """Fail closed: without AUXIP_SECRET_KEYS prip answers 503 rather than store it clear."""
    body = json.dumps({"NotificationEndpoint": "https://client.example.org/notify",
                       "NotificationEpUsername": "client",
                       "NotificationEpPassword": SECRET}).encode()
    bob = Principal(subject="bob-no-keys", username="bob", roles=frozenset({SUBSCRIBER}))
    with ConnectionPool(settings.database_url, min_size=1, max_size=1, open=True) as pool:
        with pytest.raises(ODataError) as refused:
            subscriptions.create(pool, bob, body, "127.0.0.1", max_per_user=5,
                                 secret_keys=None)
        assert refused.value.status == 503 and "AUXIP_SECRET_KEYS" in str(refused.value)
        with pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM subscriptions WHERE owner = %s",
                                ("bob-no-keys",)).fetchone()[0] == 0
        # Without a password, no key is needed.
        plain = json.dumps({"NotificationEndpoint": "https://client.example.org/n"}).encode()
        made = subscriptions.create(pool, bob, plain, "127.0.0.1", max_per_user=5,
                                    secret_keys=None)
        assert made["Status"] == "running"


INVALID = [
    (b'{"NotificationEndpoint": "https://x.example.org/", "FilterParam": "Name eq"}',
     400, "InvalidFilter"),
    (b'{"NotificationEndpoint": "https://x.example.org/", "FilterParam": "Foo eq 1"}',
     400, "InvalidFilter"),
    (b'{"NotificationEndpoint": ', 400, "InvalidBody"),
    (b'\xff\xfe', 400, "InvalidBody"),
    (b'[1, 2]', 400, "InvalidBody"),
    (b'{}', 400, "InvalidBody"),
    (b'{"NotificationEndpoint": "ftp://x.example.org/"}', 400, "InvalidBody"),
    (b'{"NotificationEndpoint": "https://user:pw@x.example.org/"}', 400, "InvalidBody"),
    (b'{"NotificationEndpoint": "not a url"}', 400, "InvalidBody"),
    (b'{"NotificationEndpoint": "https://x.example.org/", "Colour": "red"}', 400,
     "InvalidBody"),
    (b'{"NotificationEndpoint": "https://x.example.org/", "SubscriptionType": "pull"}', 400,
     "InvalidBody"),
    (b'{"NotificationEndpoint": "https://x.example.org/", "Status": "cancelled"}', 400,
     "InvalidBody"),
    (b'{"NotificationEndpoint": "https://x.example.org/", "NotificationEpPassword": "p"}',
     400, "InvalidBody"),
    (b'{"NotificationEndpoint": "https://x.example.org/", "FilterParam": "'
     + b"x" * 70_000 + b'"}', 413, "PayloadTooLarge"),
]


@pytest.mark.parametrize(("raw", "status", "code"), INVALID, ids=[i[2] + str(n)
                                                                 for n, i in enumerate(INVALID)])
def test_invalid_bodies(api, raw, status, code):
    answer = api.request("POST", "Subscriptions", "bob", content=raw,
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert b"user:pw" not in answer.content


def test_list_paging(api):
    ids = [create(api, "sam", FilterParam=f"contains(Name,'{n}')")["Id"] for n in range(3)]
    page = api.get("Subscriptions", "sam", params={"$top": "2", "$count": "true"}).json()
    assert page["@odata.count"] == 3 and [s["Id"] for s in page["value"]] == ids[:2]
    rest = api.get("Subscriptions", "sam", params={"$top": "2", "$skip": "2"}).json()
    assert [s["Id"] for s in rest["value"]] == ids[2:]
    assert api.get("Subscriptions", "sam", params={"$top": "x"}).status_code == 400
    assert api.get("Subscriptions", "sam", params={"$filter": "Status eq 'running'"}
                   ).status_code == 400


@pytest.fixture
def two_per_user(function_env) -> Iterator[None]:
    os.environ["AUXIP_MAX_SUBSCRIPTIONS_PER_USER"] = "2"
    reset_caches()
    yield
    del os.environ["AUXIP_MAX_SUBSCRIPTIONS_PER_USER"]
    reset_caches()


def test_subscriptions_per_user_are_limited(api, two_per_user):
    for user in ("carol", "ops"):
        for existing in api.get("Subscriptions", user).json()["value"]:
            if user == "carol":
                api.request("DELETE", f"Subscriptions({existing['Id']})", user)
    create(api, "carol")
    create(api, "carol")
    third = api.request("POST", "Subscriptions", "carol",
                        json={"NotificationEndpoint": "https://x.example.org/"})
    assert third.status_code == 403
    assert third.json()["error"]["code"] == "TooManySubscriptions"


REFUSED_ENDPOINTS = ["http://169.254.169.254/latest/meta-data", "http://[::1]:8080/",
                     "http://[::ffff:127.0.0.2]/", "http://localhost:1/x",
                     "http://127.0.0.2:8080/hook", "http://2130706434/",  # 127.0.0.2
                     "http://10.0.0.1/hook", "http://[fd00::1]/hook",
                     "http://172.16.5.4:8080/", "http://[64:ff9b::7f00:2]/"]  # NAT64 127.0.0.2


@pytest.mark.parametrize("endpoint", REFUSED_ENDPOINTS)
def test_internal_endpoints_are_refused_and_not_stored(api, settings, endpoint):
    """No subscription can point notify at loopback, link-local (cloud metadata), private
    networks and the like; the test prip allows 127.0.0.1/32 only, so 127.0.0.2 stays
    refused."""
    answer = api.request("POST", "Subscriptions", "bob", json={
        "NotificationEndpoint": endpoint, "FilterParam": "contains(Name,'AUX_CAL')"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidBody"
    assert "endpoint address is not allowed" in error["message"]
    with psycopg.connect(settings.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM subscriptions WHERE notification_endpoint"
                              " = %s", (endpoint,)).fetchone()[0]
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE details->>'endpoint'"
                               " = %s", (endpoint,)).fetchone()[0]
    assert (stored, audited) == (0, 0)


def test_public_and_allowed_endpoints_are_accepted(api):
    for endpoint in ("http://198.51.100.7/hook", "http://127.0.0.1:9/allowed-in-tests"):
        made = create(api, "bob", NotificationEndpoint=endpoint)
        assert made["NotificationEndpoint"] == endpoint
        assert api.request("DELETE", f"Subscriptions({made['Id']})", "bob").status_code == 204
