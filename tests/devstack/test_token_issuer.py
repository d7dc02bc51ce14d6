"""The local stack's token issuer, spoken to as OAuth2 clients and Keycloak users do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from devstack.token_issuer.app import IssuerConfig, IssuerSettings
from devstack.token_issuer.realm import local_issuer, local_token_url
from devstack.token_issuer.realm_file import RealmError, load_realm, people_from_spec
from shared.prip.auth import AuthSettings, TokenValidator
from tests.devstack.issuer import RunningIssuer

ROOT = Path(__file__).resolve().parents[2]


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_password_grant_gives_a_keycloak_shaped_response(issuer: RunningIssuer):
    response = issuer.password_grant("bob", "bob-pw", client_id="auxip-cli")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["refresh_expires_in"] > 0 and body["refresh_token"] and body["scope"]
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256" and header["kid"] == issuer.kid
    claims = claims_of(body["access_token"])
    assert claims["iss"] == issuer.issuer and claims["aud"] == "auxip"
    assert claims["azp"] == "auxip-cli" and claims["preferred_username"] == "bob"
    assert claims["typ"] == "Bearer" and claims["jti"] and claims["sub"]
    assert claims["exp"] - claims["iat"] == 300
    assert {"reader", "subscriber"} <= set(claims["realm_access"]["roles"])


def test_any_client_id_or_none_at_all(issuer: RunningIssuer):
    for client_id in ("admin-cli", "some-script", ""):
        response = issuer.password_grant("alice", "alice-pw", client_id=client_id)
        assert response.status_code == 200, response.text
    no_client = httpx.post(issuer.token_url, data={"grant_type": "password",
                                                    "username": "alice",
                                                    "password": "alice-pw"})
    assert claims_of(no_client.json()["access_token"])["azp"] == "auxip"


@pytest.mark.parametrize("username, password", [
    ("alice", "wrong"), ("alice", ""), ("nobody", "alice-pw"), ("", ""), ("alice", "ALICE-PW"),
    ("service-account-auxip-ops", ""),
])
def test_wrong_credentials_are_401_invalid_grant(issuer: RunningIssuer, username, password):
    response = issuer.password_grant(username, password)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_grant",
                               "error_description": "Invalid user credentials"}


def test_usernames_are_case_insensitive_as_in_keycloak(issuer: RunningIssuer):
    response = issuer.password_grant("ALICE", "alice-pw")
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["preferred_username"] == "alice"


def test_unsupported_or_missing_grant_type(issuer: RunningIssuer):
    response = httpx.post(issuer.token_url, data={"grant_type": "implicit", "client_id": "c"})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    # A client id the realm does not know borrows the public client for the password grant
    # only: never for codes.
    response = httpx.post(issuer.token_url, data={"grant_type": "authorization_code",
                                                   "code": "x", "client_id": "c"})
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    response = httpx.post(issuer.token_url, data={"username": "alice", "password": "alice-pw"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = httpx.post(issuer.token_url, json={"grant_type": "password"})
    assert response.status_code == 400


def test_client_credentials_for_service_clients(issuer: RunningIssuer):
    validator = TokenValidator(AuthSettings(auth_issuer=issuer.issuer))
    # Secret in the form (client_secret_post) and in Basic (client_secret_basic).
    posted = httpx.post(issuer.token_url, data={"grant_type": "client_credentials",
                                                "client_id": "auxip-notify",
                                                "client_secret": "notify-secret"})
    basic = httpx.post(issuer.token_url, data={"grant_type": "client_credentials"},
                       auth=("auxip-ops", "ops-secret"))
    assert posted.status_code == basic.status_code == 200
    assert "refresh_token" not in posted.json()
    notify = validator.validate(posted.json()["access_token"])
    assert notify.username == "service-account-auxip-notify" and notify.roles >= {"reader"}
    assert validator.validate(basic.json()["access_token"]).can("subscriber")


@pytest.mark.parametrize("form, auth, status, error", [
    ({"client_id": "auxip-notify", "client_secret": "wrong"}, None, 401, "invalid_client"),
    ({"client_id": "auxip-notify"}, None, 401, "invalid_client"),
    ({}, ("auxip-ops", "notify-secret"), 401, "invalid_client"),
    ({"client_id": "public-cli"}, None, 400, "unauthorized_client"),
])
def test_client_credentials_refusals(issuer: RunningIssuer, form, auth, status, error):
    response = httpx.post(issuer.token_url, data={"grant_type": "client_credentials", **form},
                          auth=auth)
    assert response.status_code == status and response.json()["error"] == error


def test_confidential_client_must_authenticate_for_the_password_grant_too(issuer):
    assert issuer.password_grant("alice", "alice-pw", client_id="auxip-ops").status_code == 401
    assert issuer.password_grant("alice", "alice-pw", client_id="auxip-ops",
                                 client_secret="ops-secret").status_code == 200


def test_refresh_grant(issuer: RunningIssuer):
    validator = TokenValidator(AuthSettings(auth_issuer=issuer.issuer))
    first = issuer.password_grant("bob", "bob-pw", client_id="auxip-cli").json()
    refreshed = httpx.post(issuer.token_url, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": "auxip-cli"})
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["session_state"] == first["session_state"]
    bob = validator.validate(body["access_token"])
    assert bob.username == "bob"
    assert bob.subject == validator.validate(first["access_token"]).subject

    other_client = httpx.post(issuer.token_url, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": "someone-else"})
    assert other_client.status_code == 400 and other_client.json()["error"] == "invalid_grant"
    for bogus in ("", "garbage", first["access_token"]):
        response = httpx.post(issuer.token_url, data={
            "grant_type": "refresh_token", "refresh_token": bogus, "client_id": "auxip-cli"})
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_discovery_and_jwks(issuer: RunningIssuer):
    document = httpx.get(f"{issuer.issuer}/.well-known/openid-configuration").json()
    assert document["issuer"] == issuer.issuer
    assert document["token_endpoint"] == issuer.token_url
    assert "password" in document["grant_types_supported"]
    root = httpx.get(issuer.issuer.split("/realms/")[0] + "/.well-known/openid-configuration")
    assert root.json() == document
    keys = httpx.get(document["jwks_uri"]).json()["keys"]
    assert [k["kid"] for k in keys] == [issuer.kid]
    assert keys[0]["kty"] == "RSA" and keys[0]["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])  # public half only


def test_local_users_spec():
    users = {u.username: u for u in people_from_spec("a:pa:ss:reader, subscriber; b:x:;")}
    assert users["a"].password == "pa:ss" and users["a"].realmRoles == ["reader", "subscriber"]
    assert users["b"].realmRoles == []
    with pytest.raises(RealmError) as caught:
        people_from_spec("alice:s3cret")
    assert "s3cret" not in str(caught.value)


def test_the_demo_realm_is_the_default(monkeypatch, tmp_path):
    for name in ("AUXIP_LOCAL_REALM", "AUXIP_LOCAL_USERS", "AUXIP_LOCAL_ANY_CLIENT",
                 "AUXIP_TOKEN_LIFETIME_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUXIP_STATE_DIR", str(tmp_path))
    config = IssuerConfig.from_settings(IssuerSettings())
    realm = config.realm
    assert {u.username: set(u.realmRoles) for u in realm.users
            if u.serviceAccountClientId is None} == {
        "alice": {"reader"}, "bob": {"reader", "subscriber"}, "ops": {"operator"}}
    assert {c.clientId: c.audiences for c in realm.clients} == {
        "auxip": ["auxip"], "auxip-ops": ["auxip"], "mission-planning": ["auxip", "mission-planning"]}
    assert config.any_client == "auxip" and realm.accessTokenLifespan == 300
    monkeypatch.setenv("AUXIP_LOCAL_USERS", "carol:carol-pw:reader")
    replaced = IssuerConfig.from_settings(IssuerSettings()).realm
    assert replaced.person("carol") is not None and replaced.person("alice") is None
    assert set(replaced.service_account("auxip-ops").realmRoles) == {"operator"}


@pytest.mark.parametrize("change, message", [
    ({"clients": [{"clientId": "c"}]}, "confidential but has no secret"),
    ({"clients": [{"clientId": "c", "publicClient": True, "protocolMappers": [
        {"protocolMapper": "oidc-hardcoded-claim-mapper"}]}]}, "not served here"),
    ({"users": [{"username": "u", "realmRoles": ["raeder"]}]}, "undefined roles ['raeder']"),
    ({"users": [{"username": "u", "clientRoles": {"auxip": ["x"]}}]}, "auxip/x"),
    ({"realm": "master"}, "realm"),
    ({"clients": [{"clientId": "c", "publicClient": True}] * 2}, "appears twice"),
])
def test_realm_files_that_cannot_be_served_are_refused_at_start(tmp_path, change, message):
    path = tmp_path / "realm.json"
    path.write_text(json.dumps({"realm": "auxip", **change}))
    with pytest.raises(RealmError) as caught:
        load_realm(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


# --- `python -m devstack.token_issuer` --------------------------------------------------------

def _free_port_base() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port > 1044:
            return port - 20
    raise RuntimeError("no free port")


def _start(state: Path, port_base: int, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "AUXIP_STATE_DIR": str(state),
                   "AUXIP_PORT_BASE": str(port_base), **env}
    return subprocess.Popen([sys.executable, "-m", "devstack.token_issuer"], cwd=ROOT,
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_ready(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"issuer exited: {process.stdout.read()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("issuer not ready")


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    return output


def test_served_as_a_module_keeps_its_key_across_restarts(tmp_path):
    state = tmp_path / "state"
    kids = []
    for attempt in range(2):
        port_base = _free_port_base()
        process = _start(state, port_base, AUXIP_TOKEN_LIFETIME_S="120",
                         AUXIP_LOCAL_USERS="carol:carol-pw:reader")
        try:
            issuer_url = f"http://127.0.0.1:{port_base + 20}/realms/auxip"
            _wait_ready(process, f"{issuer_url}/.well-known/openid-configuration")
            assert httpx.get(f"{issuer_url}/.well-known/openid-configuration"
                             ).json()["issuer"] == issuer_url
            token_url = local_token_url(port_base)
            response = httpx.post(token_url, data={"grant_type": "password", "username": "carol",
                                                   "password": "carol-pw", "client_id": "cli"})
            assert response.status_code == 200 and response.json()["expires_in"] == 120
            token = response.json()["access_token"]
            assert local_issuer(port_base) == issuer_url  # what the stack sets AUXIP_AUTH_ISSUER to
            validator = TokenValidator(AuthSettings(auth_issuer=local_issuer(port_base)))
            assert validator.validate(token).username == "carol"
            kids.append(jwt.get_unverified_header(token)["kid"])
        finally:
            output = _stop(process)
        assert "carol-pw" not in output and token not in output
    key = state / "token-issuer" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert kids[0] == kids[1]
