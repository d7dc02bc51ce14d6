"""prip's security events, through the running prip over HTTP: each refusal or change is
exactly one ECS event on the security stream, with the reason, the user and the address."""

from __future__ import annotations

import base64
import contextlib
import json
import time

import pytest

from tests.prip.catalogue import BIG, pid
from tests.prip.conftest import MAX_PARALLEL

pytestmark = pytest.mark.usefixtures("seeded")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(issuer, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": issuer.issuer, "sub": "b6f3c3c4-0000-4000-8000-000000000002",
              "aud": "auxip", "azp": "auxip", "typ": "Bearer", "iat": now, "exp": now + 300,
              "preferred_username": "mallory", "realm_access": {"roles": ["reader"]}}
    claims.update(changes)
    return claims


def _forged(issuer, kind: str) -> str:
    now = int(time.time())
    if kind == "expired":
        return issuer.sign(_claims(issuer, iat=now - 7200, exp=now - 3600))
    if kind == "wrong_issuer":
        return issuer.sign(_claims(issuer, iss="https://idp.example.org/realms/other"))
    if kind == "wrong_audience":
        return issuer.sign(_claims(issuer, aud="someone-else", azp="someone-else"))
    if kind == "bad_signature":
        header, _, signature = issuer.token("alice").split(".")
        return f"{header}.{_b64(_claims(issuer, realm_access={'roles': ['operator']}))}" \
               f".{signature}"
    if kind == "alg_none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(issuer))}."
    return "not-a-token"


# The signature holds for these: the name the token gives is reported.
_NAMED = {"expired", "wrong_issuer", "wrong_audience"}


@pytest.mark.parametrize("reason", ["expired", "wrong_issuer", "wrong_audience",
                                    "bad_signature", "alg_none", "malformed"])
def test_a_refused_token_is_one_event_with_its_reason(api, issuer, security_events, reason):
    answer = api.get("Products", user=None,
                     headers={"Authorization": f"Bearer {_forged(issuer, reason)}"})
    assert answer.status_code == 401
    event = security_events.one("auxip.token.refused")
    assert event["event.kind"] == "event" and event["event.category"] == ["authentication"]
    assert (event["event.outcome"], event["event.reason"]) == ("failure", reason)
    assert event["source.ip"] == "127.0.0.1" and event["auxip.url_path"] == "/odata/v1/Products"
    assert event.get("user.name") == ("mallory" if reason in _NAMED else None)
    assert event["log.level"] == "warning"


def test_unsupported_credentials_are_a_refused_login(api, security_events):
    answer = api.get("Products", user=None, headers={"Authorization": "Basic YTpi"})
    assert answer.status_code == 401
    event = security_events.one("auxip.login.refused")
    assert event["event.reason"] == "unsupported_scheme"
    assert event["event.category"] == ["authentication"]


def test_a_missing_role_is_one_denial(api, security_events):
    assert api.get("Subscriptions", user="alice").status_code == 403  # a reader only
    event = security_events.one("auxip.role.denied")
    assert (event["user.name"], event["event.reason"]) == ("alice", "role_required:subscriber")
    assert event["event.category"] == ["iam"] and event["event.outcome"] == "failure"
    assert event["source.ip"] == "127.0.0.1"


def test_the_parallel_download_quota_is_one_refusal(api, security_events):
    with contextlib.ExitStack() as held:
        streams = [held.enter_context(api.http.stream(
            "GET", f"{api.root}/Products({pid(BIG)})/$value", headers=api.headers("alice")))
            for _ in range(MAX_PARALLEL)]
        assert [s.status_code for s in streams] == [200] * MAX_PARALLEL
        assert api.get(f"Products({pid(1)})/$value").status_code == 429
        event = security_events.one("auxip.quota.refused", user__name="alice")
    assert event["event.reason"] == "parallel_downloads" and event["auxip.limit"] == MAX_PARALLEL
    assert event["event.category"] == ["network"] and event["event.type"] == ["denied"]


def test_subscription_changes_and_a_refused_endpoint(api, security_events):
    created = api.request("POST", "Subscriptions", "bob", json={
        "NotificationEndpoint": "https://client.example.org/notify",
        "NotificationEpUsername": "bob", "NotificationEpPassword": "s3cret-pw"})
    assert created.status_code == 201, created.text
    key = created.json()["Id"]
    event = security_events.one("auxip.subscription.created", auxip__subscription_id=key)
    assert (event["user.name"], event["event.outcome"]) == ("bob", "success")
    assert event["event.category"] == ["configuration"] and event["event.type"] == ["creation"]
    assert event["auxip.endpoint"] == "https://client.example.org/notify"
    assert "s3cret-pw" not in json.dumps(security_events.events())  # never a password

    paused = api.request("PATCH", f"Subscriptions({key})", "bob", json={"Status": "paused"})
    assert paused.status_code == 200, paused.text
    changed = security_events.one("auxip.subscription.changed", auxip__subscription_id=key)
    assert (changed["auxip.status_before"], changed["auxip.status"]) == ("running", "paused")
    assert api.request("DELETE", f"Subscriptions({key})", "bob").status_code == 204
    deleted = security_events.one("auxip.subscription.deleted", auxip__subscription_id=key)
    assert deleted["event.type"] == ["deletion"]

    refused = api.request("POST", "Subscriptions", "bob", json={
        "NotificationEndpoint": "http://169.254.169.254/latest/meta-data"})
    assert refused.status_code == 400
    event = security_events.one("auxip.endpoint.refused", user__name="bob")
    assert event["auxip.via"] == "subscription" and event["event.reason"]
    assert event["auxip.endpoint"] == "http://169.254.169.254/latest/meta-data"


def test_a_refused_query_token_is_reported_without_the_token(api, issuer, security_events):
    token = _forged(issuer, "expired")
    answer = api.get(f"Products({pid(1)})/$value", user=None, params={"token": token})
    assert answer.status_code == 401
    event = security_events.one("auxip.token.refused")
    assert event["event.reason"] == "expired" and event["user.name"] == "mallory"
    assert token.split(".")[2][:20] not in json.dumps(event)  # the path, never the query
