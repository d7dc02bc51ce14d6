"""A stand-in for a Keycloak realm, for the local stack only (not for production), at
Keycloak's paths: OIDC discovery, JWKS, the token endpoint (password, client-credentials,
refresh and authorization-code grants), the authorization endpoint (a login page; code
flow with PKCE), userinfo. The realm (clients, users, roles, audience mappers) is a
Keycloak realm export: see realm_file.py. No persistence beyond the signing key; no SSO
session (every browser login asks for the password).

AUXIP_LOCAL_REALM (the demo realm beside this file): the realm file.
AUXIP_LOCAL_USERS="name:password:role,role;...": replaces the realm file's people (not its
  service accounts); the roles it names are realm roles.
AUXIP_LOCAL_ANY_CLIENT (`auxip`): a client id the realm does not know borrows this public
  client's settings for the password grant (scripts of the field send ids of their own);
  empty: unknown client ids are refused, as Keycloak does. A request naming no client at
  all is this client's.
AUXIP_TOKEN_LIFETIME_S, AUXIP_REFRESH_LIFETIME_S: override the realm's
  accessTokenLifespan and ssoSessionIdleTimeout.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, redirect, request
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from devstack.token_issuer import authorization
from devstack.token_issuer.keys import key_path, load_or_create_key, public_jwk
from devstack.token_issuer.minting import OPENID, Grant, Minter, granted_scope
from devstack.token_issuer.realm import LOCAL_REALM, local_issuer
from devstack.token_issuer.realm_file import (
    DEMO_REALM,
    Client,
    Realm,
    RealmError,
    User,
    load_realm,
    people_from_spec,
)

_BAD_CLIENT = "Invalid client or Invalid client credentials"  # Keycloak's wording
_PAGE_HEADERS = {
    "Cache-Control": "no-store", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class IssuerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    local_realm: Path = DEMO_REALM
    local_users: SecretStr | None = None
    local_any_client: str = "auxip"
    token_lifetime_s: int | None = None
    refresh_lifetime_s: int | None = None
    state_dir: Path = Path(".local")
    port_base: int = 8080


@dataclass(frozen=True)
class IssuerConfig:
    issuer: str
    key: rsa.RSAPrivateKey = field(repr=False)
    realm: Realm
    any_client: str | None = "auxip"
    lifetime_s: int | None = None  # None: the realm's accessTokenLifespan
    refresh_lifetime_s: int | None = None  # None: the realm's ssoSessionIdleTimeout

    @classmethod
    def from_settings(cls, settings: IssuerSettings, *, issuer: str | None = None) -> IssuerConfig:
        realm = load_realm(settings.local_realm)
        if settings.local_users is not None:
            realm = realm.with_people(people_from_spec(settings.local_users.get_secret_value()))
        return cls(
            issuer=issuer or local_issuer(settings.port_base),
            key=load_or_create_key(key_path(settings.state_dir)), realm=realm,
            any_client=settings.local_any_client or None,
            lifetime_s=settings.token_lifetime_s,
            refresh_lifetime_s=settings.refresh_lifetime_s,
        )


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def discovery_document(issuer: str) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 section 3 (and RFC 8414): every REQUIRED field and the
    RECOMMENDED ones clients read, each true of what this realm serves."""
    endpoint = f"{issuer}/protocol/openid-connect"
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{endpoint}/auth",
        "token_endpoint": f"{endpoint}/token",
        "userinfo_endpoint": f"{endpoint}/userinfo",
        "jwks_uri": f"{endpoint}/certs",
        "grant_types_supported": ["authorization_code", "refresh_token", "password",
                                  "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": [OPENID, "profile", "email"],
        "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "jti",
                             "nonce", "sid", "acr", "at_hash", "typ", "scope",
                             "preferred_username", "name", "given_name", "family_name",
                             "email", "email_verified", "realm_access", "resource_access"],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        # Its default is true: said explicitly, since request_uri is not served.
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "authorization_response_iss_parameter_supported": True,
    }


def create_app(config: IssuerConfig) -> Flask:
    realm = config.realm
    if config.any_client is not None:
        template = realm.client(config.any_client)
        if template is None or not template.publicClient:
            raise RealmError(f"AUXIP_LOCAL_ANY_CLIENT names {config.any_client!r}, which is "
                             "not a public client of the realm")
    jwk = public_jwk(config.key)
    minter = Minter(config.issuer, config.key, jwk["kid"], realm,
                    config.lifetime_s or realm.accessTokenLifespan,
                    config.refresh_lifetime_s or realm.ssoSessionIdleTimeout)
    codes = authorization.Codes()
    app = Flask(__name__)
    oidc = f"/realms/{LOCAL_REALM}/protocol/openid-connect"
    discovery = discovery_document(config.issuer)
    authorize_url = discovery["authorization_endpoint"]

    @app.get(f"/realms/{LOCAL_REALM}/.well-known/openid-configuration")
    @app.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        return jsonify(discovery)

    @app.get(f"{oidc}/certs")
    def certs() -> Response:
        return jsonify({"keys": [jwk]})

    @app.get("/health/ready")
    def ready() -> Response:
        return jsonify({"status": "UP"})

    @app.post(f"{oidc}/token")
    def token() -> Response:
        try:
            response = jsonify(_grant(config, minter, codes))
        except _OAuthError as exc:
            response = jsonify({"error": exc.error, "error_description": exc.description})
            response.status_code = exc.status
        # RFC 6749 5.1: token responses are never cached.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    @app.route(f"{oidc}/auth", methods=["GET", "POST"])
    def authorize() -> Response:
        params = request.args if request.method == "GET" else request.form
        try:
            wanted = authorization.parse_request(realm, params.to_dict())
        except authorization.PageError as error:
            return _page(authorization.login_page(authorize_url, None, str(error)), 400)
        except authorization.RedirectError as error:
            return _back(config.issuer, error.redirect_uri, error.state,
                         {"error": error.error, "error_description": error.description})
        if request.method == "GET":
            return _page(authorization.login_page(authorize_url, wanted, None), 200)
        username = request.form.get("username", "")
        user = _person(realm, username, request.form.get("password", ""))
        if user is None:
            return _page(authorization.login_page(authorize_url, wanted,
                                                  "Invalid username or password.",
                                                  username=username), 200)
        session = str(uuid.uuid4())
        code = codes.issue(wanted, user, session)
        return _back(config.issuer, wanted.redirect_uri, wanted.state,
                     {"session_state": session, "code": code})

    @app.route(f"{oidc}/userinfo", methods=["GET", "POST"])
    def userinfo() -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _bearer_refusal(401, "invalid_request", "Bearer token missing")
        try:
            claims = minter.verify(token.strip(), audience=None, typ="Bearer")
        except (jwt.PyJWTError, ValueError, TypeError):
            return _bearer_refusal(401, "invalid_token", "Token verification failed")
        if OPENID not in str(claims.get("scope", "")).split():
            return _bearer_refusal(403, "insufficient_scope", "Missing openid scope")
        user = minter.user_of(claims)
        if user is None:
            return _bearer_refusal(401, "invalid_token", "User not found or disabled")
        return jsonify({"sub": claims["sub"], **minter.profile_claims(user)})

    return app


def _grant(config: IssuerConfig, minter: Minter, codes: authorization.Codes) -> dict[str, Any]:
    form = request.form
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _OAuthError(400, "invalid_request", "Missing form parameter: grant_type")
    client_id, client = _client(config)
    registered = config.realm.client(client_id) is not None

    if grant_type == "password":
        if not client.directAccessGrantsEnabled:
            raise _OAuthError(400, "unauthorized_client",
                              "Client not allowed for direct access grants")
        user = _person(config.realm, form.get("username", ""), form.get("password", ""))
        if user is None:
            raise _OAuthError(401, "invalid_grant", "Invalid user credentials")
        return minter.response(Grant(client_id, client, user, granted_scope(form.get("scope")),
                                     refresh=True))
    if grant_type == "client_credentials":
        if not registered or client.publicClient:
            raise _OAuthError(400, "unauthorized_client",
                              "Public client not allowed to retrieve service account")
        if not client.serviceAccountsEnabled:
            raise _OAuthError(400, "unauthorized_client",
                              "Client not enabled to retrieve service account")
        account = config.realm.service_account(client_id)
        if not account.enabled:
            raise _OAuthError(400, "invalid_grant", "Service account disabled")
        return minter.response(Grant(client_id, client, account,
                                     granted_scope(form.get("scope")), refresh=False))
    if grant_type == "refresh_token":
        try:
            claims = minter.verify(form.get("refresh_token", ""), audience=config.issuer,
                                   typ="Refresh")
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _OAuthError(400, "invalid_grant", "Invalid refresh token") from None
        if claims.get("azp") != client_id:
            raise _OAuthError(400, "invalid_grant", "Invalid refresh token. Token client "
                                                    "and authorized client don't match")
        user = minter.user_of(claims)
        if user is None:  # removed or disabled since
            raise _OAuthError(400, "invalid_grant", "Invalid refresh token")
        auth_time = claims.get("auth_time")
        return minter.response(Grant(
            client_id, client, user, str(claims.get("scope", "")), refresh=True,
            session=str(claims.get("sid") or uuid.uuid4()),
            auth_time=auth_time if isinstance(auth_time, int) else None))
    if grant_type == "authorization_code":
        return minter.response(_code_grant(codes, client_id, client, registered))
    raise _OAuthError(400, "unsupported_grant_type", "Unsupported grant_type")


def _code_grant(codes: authorization.Codes, client_id: str, client: Client,
                registered: bool) -> Grant:
    form = request.form
    if not registered or not client.standardFlowEnabled:
        raise _OAuthError(400, "unauthorized_client",
                          "Client not allowed to exchange code")
    issued = codes.redeem(form.get("code", ""))
    if issued is None or issued.request.client.clientId != client_id:
        raise _OAuthError(400, "invalid_grant", "Code not valid")
    if form.get("redirect_uri") != issued.request.redirect_uri:
        raise _OAuthError(400, "invalid_grant", "Incorrect redirect_uri")
    verifier = form.get("code_verifier")
    challenge = issued.request.code_challenge
    if challenge is None:
        if verifier is not None:  # RFC 9700 2.1.1: a verifier without a challenge is refused
            raise _OAuthError(400, "invalid_grant", "PKCE code verifier not expected")
    elif verifier is None:
        raise _OAuthError(400, "invalid_grant", "PKCE code verifier not specified")
    elif not authorization.pkce_holds(challenge, verifier):
        raise _OAuthError(400, "invalid_grant", "PKCE verification failed")
    if not issued.user.enabled:
        raise _OAuthError(400, "invalid_grant", "User disabled")
    return Grant(client_id, client, issued.user, granted_scope(issued.request.scope),
                 refresh=True, session=issued.session, auth_time=issued.auth_time,
                 nonce=issued.request.nonce)


def _client(config: IssuerConfig) -> tuple[str, Client]:
    """The client of a token request, authenticated: a confidential one by its secret
    (client_secret_basic or client_secret_post); a public one by its id alone; an id the
    realm does not know borrows AUXIP_LOCAL_ANY_CLIENT, when set."""
    client_id, secret = _client_credentials()
    if not client_id and config.any_client is not None:
        client_id = config.any_client
    client = config.realm.client(client_id)
    if client is None:
        borrowed = config.realm.client(config.any_client) if config.any_client else None
        if borrowed is None or not client_id:
            raise _OAuthError(401, "invalid_client", _BAD_CLIENT)
        return client_id, borrowed
    if not client.publicClient and not (
            secret is not None and client.secret is not None
            and hmac.compare_digest(secret.encode(), client.secret.encode())):
        raise _OAuthError(401, "invalid_client", _BAD_CLIENT)
    return client_id, client


def _client_credentials() -> tuple[str, str | None]:
    """client_secret_basic first (RFC 6749 2.3.1: form-urlencoded inside Basic), then the
    form."""
    authorization_header = request.headers.get("Authorization", "")
    scheme, _, encoded = authorization_header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            raise _OAuthError(401, "invalid_client", _BAD_CLIENT) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise _OAuthError(401, "invalid_client", _BAD_CLIENT)
        return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    return request.form.get("client_id", ""), request.form.get("client_secret")


def _person(realm: Realm, username: str, password: str) -> User | None:
    user = realm.person(username)
    expected = user.password if user is not None else None
    # Compared even for unknown names, so that timing does not tell which exist.
    matches = hmac.compare_digest(password.encode(), (expected or "\0").encode())
    return user if user is not None and expected is not None and matches else None


def _page(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=_PAGE_HEADERS)


def _back(issuer: str, redirect_uri: str, state: str | None,
          params: Mapping[str, str]) -> Response:
    answer = dict(params)
    if state is not None:
        answer["state"] = state
    answer["iss"] = issuer  # RFC 9207: which realm answered (mix-up attacks)
    separator = "&" if "?" in redirect_uri else "?"
    response = redirect(f"{redirect_uri}{separator}{urlencode(answer)}", code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_refusal(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["WWW-Authenticate"] = (f'Bearer realm="{LOCAL_REALM}", error="{error}", '
                                            f'error_description="{description}"')
    return response
