"""OIDC clients that are not auxip's own (authlib's OAuth2Session, joserfc) against prip:
they discover the local realm, take tokens by the password and client-credentials grants
for clients mapped to different audiences, validate the tokens themselves, and call the
API; prip accepts exactly the audiences of AUXIP_AUTH_AUDIENCE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from devstack.token_issuer.realm_file import DEMO_REALM, Realm, load_realm
from tests.devstack.issuer import RunningIssuer, audience_mapper, start_issuer, stop_issuer
from tests.prip.catalogue import BY_NUMBER, pid
from tests.prip.conftest import Served, set_env

pytestmark = pytest.mark.usefixtures("seeded")
ACCEPTED = "auxip,processing-api"


def _realm() -> Realm:
    """The demo realm plus two confidential clients: one mapped to another audience prip
    is told to accept, one to an audience prip knows nothing of."""
    realm = load_realm(DEMO_REALM).model_dump()
    for client_id, audience in (("processing", "processing-api"), ("elsewhere", "other-api")):
        realm["clients"].append({
            "clientId": client_id, "secret": f"{client_id}-secret", "standardFlowEnabled": False,
            "directAccessGrantsEnabled": True, "serviceAccountsEnabled": True,
            "protocolMappers": [audience_mapper(audience, custom=True)]})
        realm["users"].append({"username": f"service-account-{client_id}",
                               "serviceAccountClientId": client_id, "realmRoles": ["reader"]})
    return Realm.model_validate(realm)


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIssuer]:
    running = start_issuer(tmp_path_factory.mktemp("clients-realm"), realm=_realm())
    yield running
    stop_issuer(running)


@pytest.fixture
def prip_of_realm(function_env: dict[str, str], realm: RunningIssuer, prip: Served
                  ) -> Iterator[str]:
    """prip trusting `realm` for the audiences ACCEPTED; its service root."""
    saved = set_env(AUXIP_AUTH_ISSUER=realm.issuer, AUXIP_AUTH_AUDIENCE=ACCEPTED)
    yield f"{prip.base}/odata/v1"
    set_env(**saved)


def _discover(issuer: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # loopback realm: http
    OpenIDProviderMetadata(metadata).validate()
    return metadata


def _validated(token: dict[str, Any], metadata: dict[str, Any], keys: KeySet) -> dict[str, Any]:
    """What a resource-side client library checks: signature by a key of the realm's JWKS,
    issuer, expiry, and an audience among the accepted ones."""
    claims = jwt.decode(token["access_token"], keys, algorithms=["RS256"]).claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "values": ACCEPTED.split(",")},
        exp={"essential": True}).validate(claims)
    return claims


def test_clients_of_two_audiences_discover_validate_and_call(prip_of_realm, realm, monkeypatch):
    metadata = _discover(realm.issuer, monkeypatch)
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    endpoint = metadata["token_endpoint"]
    cases = [
        ("auxip", None, {"grant_type": "password", "username": "alice",
                         "password": "alice-pw"}, "auxip"),
        ("processing", "processing-secret", {"grant_type": "password", "username": "bob",
                                             "password": "bob-pw"}, "processing-api"),
        ("processing", "processing-secret", {"grant_type": "client_credentials"},
         "processing-api"),
        ("mission-planning", "mission-planning-demo-secret",
         {"grant_type": "client_credentials"}, ["auxip", "mission-planning"]),
    ]
    for client_id, secret, grant, audience in cases:
        session = OAuth2Session(client_id, secret, token_endpoint_auth_method=(
            "none" if secret is None else "client_secret_basic"))
        claims = _validated(session.fetch_token(endpoint, **grant), metadata, keys)
        assert claims["aud"] == audience and claims["azp"] == client_id
        answer = session.get(f"{prip_of_realm}/Products", params={"$top": "1"})
        assert answer.status_code == 200, (client_id, grant, answer.text)
        download = session.get(f"{prip_of_realm}/Products({pid(1)})/$value")
        assert download.status_code == 200 and download.content == BY_NUMBER[1].data()


def test_a_token_for_an_audience_not_in_the_list_is_refused(prip_of_realm, realm):
    elsewhere = OAuth2Session("elsewhere", "elsewhere-secret")
    token = elsewhere.fetch_token(f"{realm.issuer}/protocol/openid-connect/token",
                                  grant_type="client_credentials")
    assert jwt.decode(token["access_token"], KeySet.import_key_set(
        httpx.get(f"{realm.issuer}/protocol/openid-connect/certs").json())).claims["aud"] == \
        "other-api"
    answer = elsewhere.get(f"{prip_of_realm}/Products")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_token"
    assert "audience" in answer.json()["error"]["message"]
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_the_list_decides(prip_of_realm, realm):
    processing = OAuth2Session("processing", "processing-secret")
    processing.fetch_token(f"{realm.issuer}/protocol/openid-connect/token",
                           grant_type="client_credentials")
    assert processing.get(f"{prip_of_realm}/Products").status_code == 200
    set_env(AUXIP_AUTH_AUDIENCE="auxip")  # the fixture puts the list back
    assert processing.get(f"{prip_of_realm}/Products").status_code == 401
    people = OAuth2Session("auxip", token_endpoint_auth_method="none")
    people.fetch_token(f"{realm.issuer}/protocol/openid-connect/token", grant_type="password",
                       username="alice", password="alice-pw")
    assert people.get(f"{prip_of_realm}/Products").status_code == 200
