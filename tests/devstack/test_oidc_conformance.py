"""The local realm spoken to by an OIDC client library that is not auxip's (authlib, with
joserfc for the JOSE side): its discovery document passes authlib's OpenID Provider
Metadata checks, the authorization-code flow with PKCE works as a browser drives it, the
ID token and the access token pass the client's own validation, and the tokens carry
Keycloak's shapes (audience mappers, audience resolve, realm_access, resource_access)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from devstack.token_issuer.realm_file import DEMO_REALM, Realm, load_realm
from tests.devstack.issuer import RunningIssuer, audience_mapper, start_issuer, stop_issuer

REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the test reads the redirect itself


def oidc_realm() -> Realm:
    """The demo realm's clients and people, plus a person whose only grant is a client role."""
    demo = load_realm(DEMO_REALM).model_dump()
    demo["roles"]["client"] = {"auxip": [{"name": "reader"}]}
    demo["clients"].append({"clientId": "portal", "secret": "portal-secret",
                            "standardFlowEnabled": True, "directAccessGrantsEnabled": True,
                            "redirectUris": [REDIRECT],
                            "protocolMappers": [audience_mapper("portal-api", custom=True)]})
    demo["users"].append({"username": "dave", "email": "dave@example.org",
                          "credentials": [{"type": "password", "value": "dave-pw"}],
                          "clientRoles": {"auxip": ["reader"]}})
    return Realm.model_validate(demo)


@pytest.fixture(scope="module")
def realm_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIssuer]:
    running = start_issuer(tmp_path_factory.mktemp("oidc"), realm=oidc_realm())
    yield running
    stop_issuer(running)


@pytest.fixture(scope="module")
def metadata(realm_issuer: RunningIssuer) -> dict[str, Any]:
    answer = httpx.get(f"{realm_issuer.issuer}/.well-known/openid-configuration")
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(scope="module")
def keys(metadata: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())


def test_discovery_passes_the_client_librarys_metadata_checks(metadata, realm_issuer,
                                                               monkeypatch):
    # authlib insists on https, which a loopback realm does not have.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == realm_issuer.issuer
    for required in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                     "response_types_supported", "subject_types_supported",
                     "id_token_signing_alg_values_supported"):
        assert metadata[required], required
    # Each advertised endpoint is served (an empty request is refused, but not as unknown).
    assert httpx.get(metadata["authorization_endpoint"]).status_code == 400
    assert httpx.post(metadata["token_endpoint"]).status_code == 400
    assert httpx.get(metadata["userinfo_endpoint"]).status_code == 401
    assert httpx.get(metadata["jwks_uri"]).status_code == 200
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code", "refresh_token", "password", "client_credentials"}


class _Form(HTMLParser):
    """The login form as a browser sees it: its action and its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action")
        elif tag == "input" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def browser_login(url: str, username: str, password: str) -> httpx.Response:
    """Open the authorization URL, fill in the login form, submit it (redirects not
    followed: the answer's Location is what the client's redirect URI would receive)."""
    page = httpx.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    form = _Form()
    form.feed(page.text)
    assert form.action is not None
    return httpx.post(form.action, data={**form.fields, "username": username,
                                         "password": password})


def redirected_to(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_authorization_code_flow_with_pkce(metadata, keys, realm_issuer):
    client = OAuth2Session(client_id="auxip", token_endpoint_auth_method="none",
                          redirect_uri=REDIRECT, scope="openid", code_challenge_method="S256")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"],
                                                 code_verifier=verifier, nonce=nonce)
    answer = browser_login(url, "bob", "bob-pw")
    query = redirected_to(answer)
    assert query["state"] == state and query["iss"] == realm_issuer.issuer
    token = client.fetch_token(metadata["token_endpoint"], code_verifier=verifier,
                               authorization_response=answer.headers["Location"])
    assert token["token_type"] == "Bearer" and token["refresh_token"]

    # The ID token as the client library checks it: signature, iss, aud, nonce, at_hash.
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = CodeIDToken(decoded.claims, decoded.header,
                         {"iss": {"essential": True, "values": [realm_issuer.issuer]}},
                         {"nonce": nonce, "client_id": "auxip",
                          "access_token": token["access_token"]})
    claims.validate()
    assert claims["preferred_username"] == "bob" and claims["email"] == "bob@example.org"
    access = jwt.decode(token["access_token"], keys, algorithms=["RS256"]).claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": realm_issuer.issuer},
                          aud={"essential": True, "value": "auxip"}).validate(access)
    assert access["sub"] == claims["sub"] and access["auth_time"] == claims["auth_time"]

    # userinfo with the access token, and a refresh that keeps the session.
    userinfo = client.get(metadata["userinfo_endpoint"])
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == claims["sub"]
    refreshed = client.refresh_token(metadata["token_endpoint"])
    assert refreshed["session_state"] == token["session_state"]


def _authorize(metadata: dict[str, Any], **params: str) -> httpx.Response:
    query = {"response_type": "code", "client_id": "auxip", "redirect_uri": REDIRECT,
             "scope": "openid", "state": "s-1", **params}
    return httpx.get(metadata["authorization_endpoint"], params=query)


def test_authorization_requests_refused_on_the_page_are_never_redirected(metadata):
    for params in ({"client_id": "nobody"}, {"redirect_uri": "http://evil.example/cb"},
                   {"redirect_uri": "http://127.0.0.1.evil.example/cb"}):
        answer = _authorize(metadata, **params)
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert "Invalid parameter: redirect_uri" in answer.text or "Client not found" in answer.text


@pytest.mark.parametrize("params, error", [
    ({}, "invalid_request"),  # a public client without PKCE
    ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge": "x" * 43, "code_challenge_method": "S256", "prompt": "none"},
     "login_required"),
    ({"code_challenge": "x" * 43, "code_challenge_method": "S256", "request": "eyJ..."},
     "request_not_supported"),
])
def test_authorization_errors_go_back_to_the_client(metadata, realm_issuer, params, error):
    query = redirected_to(_authorize(metadata, **params))
    assert query["error"] == error and query["state"] == "s-1"
    assert query["iss"] == realm_issuer.issuer


def test_codes_are_good_once_for_their_client_redirect_and_verifier(metadata):
    def code_for(client: OAuth2Session, verifier: str | None) -> str:
        extra = {"code_verifier": verifier} if verifier else {}
        url, _ = client.create_authorization_url(metadata["authorization_endpoint"], **extra)
        return redirected_to(browser_login(url, "alice", "alice-pw"))["code"]

    def exchange(code: str, client_id: str = "auxip", **form: str) -> httpx.Response:
        return httpx.post(metadata["token_endpoint"], data={
            "grant_type": "authorization_code", "code": code, "client_id": client_id,
            "redirect_uri": REDIRECT, **form})

    public = OAuth2Session(client_id="auxip", redirect_uri=REDIRECT, scope="openid",
                          code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    code = code_for(public, verifier)
    assert exchange(code, code_verifier=secrets.token_urlsafe(48)).json()["error"] == \
        "invalid_grant"
    code = code_for(public, verifier)
    assert exchange(code).json()["error_description"] == "PKCE code verifier not specified"
    code = code_for(public, verifier)
    assert exchange(code, redirect_uri=REDIRECT + "x", code_verifier=verifier
                    ).json()["error_description"] == "Incorrect redirect_uri"
    code = code_for(public, verifier)
    assert exchange(code, code_verifier=verifier).status_code == 200
    again = exchange(code, code_verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    # A confidential client: its secret, and no PKCE unless it asked for it.
    portal = OAuth2Session(client_id="portal", client_secret="portal-secret",
                          redirect_uri=REDIRECT, scope="openid")
    code = code_for(portal, None)
    assert exchange(code, "portal").json()["error"] == "invalid_client"  # no secret
    code = code_for(portal, None)
    assert exchange(code, "auxip").json()["error"] == "invalid_grant"  # another client's code
    code = code_for(portal, None)
    assert exchange(code, "portal", client_secret="portal-secret").status_code == 200


def test_a_wrong_password_shows_the_form_again(metadata):
    client = OAuth2Session(client_id="auxip", redirect_uri=REDIRECT, scope="openid",
                          code_challenge_method="S256")
    url, _ = client.create_authorization_url(metadata["authorization_endpoint"],
                                             code_verifier=secrets.token_urlsafe(48))
    answer = browser_login(url, "alice", "wrong")
    assert answer.status_code == 200 and "Invalid username or password." in answer.text
    assert "Location" not in answer.headers


def _claims(token: str, keys: KeySet) -> dict[str, Any]:
    return jwt.decode(token, keys, algorithms=["RS256"]).claims


def test_tokens_carry_keycloaks_shapes(metadata, keys):
    endpoint = metadata["token_endpoint"]
    # A client role puts its client in aud (audience resolve) and in resource_access.
    portal = OAuth2Session(client_id="portal", client_secret="portal-secret")
    dave = _claims(portal.fetch_token(endpoint, grant_type="password", username="dave",
                                      password="dave-pw")["access_token"], keys)
    assert dave["aud"] == ["portal-api", "auxip"] and dave["azp"] == "portal"
    assert dave["resource_access"] == {"auxip": {"roles": ["reader"]}}
    assert "default-roles-auxip" in dave["realm_access"]["roles"]
    # Its own client is not added by audience resolve: one audience stays a string.
    public = OAuth2Session(client_id="auxip", token_endpoint_auth_method="none")
    own = _claims(public.fetch_token(endpoint, grant_type="password", username="dave",
                                     password="dave-pw")["access_token"], keys)
    assert own["aud"] == "auxip"
    # A service account: its client's audiences, its roles, no refresh token.
    planning = OAuth2Session(client_id="mission-planning",
                            client_secret="mission-planning-demo-secret")
    token = planning.fetch_token(endpoint, grant_type="client_credentials")
    service = _claims(token["access_token"], keys)
    assert service["aud"] == ["auxip", "mission-planning"]
    assert service["preferred_username"] == "service-account-mission-planning"
    assert service["clientId"] == "mission-planning" and "reader" in service["realm_access"]["roles"]
    assert "refresh_token" not in token and "id_token" not in token


@pytest.mark.parametrize("client_id, secret, grant, error", [
    ("auxip-ops", "auxip-ops-demo-secret", "password", "unauthorized_client"),
    ("auxip", None, "client_credentials", "unauthorized_client"),
    ("portal", "portal-secret", "client_credentials", "unauthorized_client"),
    ("mission-planning", "wrong", "client_credentials", "invalid_client"),
])
def test_each_client_gets_only_its_grants(metadata, client_id, secret, grant, error):
    client = OAuth2Session(client_id=client_id, client_secret=secret,
                          token_endpoint_auth_method="none" if secret is None
                          else "client_secret_basic")
    extra = {"username": "alice", "password": "alice-pw"} if grant == "password" else {}
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(metadata["token_endpoint"], grant_type=grant, **extra)
    assert refused.value.error == error


def test_userinfo_needs_an_openid_access_token(metadata):
    public = OAuth2Session(client_id="auxip", token_endpoint_auth_method="none")
    public.fetch_token(metadata["token_endpoint"], grant_type="password", username="alice",
                       password="alice-pw")  # no openid scope
    answer = public.get(metadata["userinfo_endpoint"])
    assert answer.status_code == 403 and "insufficient_scope" in answer.headers["WWW-Authenticate"]
    forged = httpx.get(metadata["userinfo_endpoint"], headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401


def test_unknown_client_ids_are_refused_when_the_realm_says_so(tmp_path: Path):
    strict = start_issuer(tmp_path, realm=oidc_realm())  # any_client None: Keycloak's rule
    try:
        answer = strict.password_grant("alice", "alice-pw", client_id="some-script")
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
        assert strict.password_grant("alice", "alice-pw", client_id="auxip").status_code == 200
    finally:
        stop_issuer(strict)
