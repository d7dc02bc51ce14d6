"""A stand-in for a Keycloak realm, for the local stack only: OAuth2 password,
client-credentials and refresh grants at Keycloak's paths, tokens shaped like a realm's
(RS256, `realm_access.roles`, `azp`, `preferred_username`), OIDC discovery and JWKS.
No login pages, no consent, no persistence beyond its signing key. Not for production.

AUXIP_LOCAL_USERS="name:password:role,role;name:password:role"
  People, for the password grant. Default: the demo users `alice:alice-pw:reader`,
  `bob:bob-pw:reader,subscriber`, `ops:ops-pw:operator`. Names cannot hold ':',
  passwords cannot hold ';'.
AUXIP_LOCAL_CLIENTS="client_id:secret:role,role;..."
  Confidential (service) clients, for the client-credentials grant; they must present
  their secret whatever the grant. Any other client_id is a public client (like
  Keycloak's `admin-cli`) and may use the password grant. Default: none.
AUXIP_TOKEN_LIFETIME_S (300), AUXIP_REFRESH_LIFETIME_S (1800), AUXIP_AUTH_AUDIENCE (auxip).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from devstack.token_issuer.realm import LOCAL_REALM, local_issuer

log = logging.getLogger(__name__)

DEMO_USERS = "alice:alice-pw:reader;bob:bob-pw:reader,subscriber;ops:ops-pw:operator"
_SUBJECTS = uuid.UUID("5b0f6c9e-2d4a-4f1e-9a63-7c2e8d1b0a54")
_DEFAULT_ROLE = f"default-roles-{LOCAL_REALM}"  # Keycloak gives every user this composite
_SCOPE = "profile email"
_BAD_CLIENT = "Invalid client or Invalid client credentials"  # Keycloak's wording


class IssuerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    local_users: SecretStr = SecretStr(DEMO_USERS)
    local_clients: SecretStr = SecretStr("")
    token_lifetime_s: int = 300
    refresh_lifetime_s: int = 1800
    auth_audience: str = "auxip"
    state_dir: Path = Path(".local")
    port_base: int = 8080


@dataclass(frozen=True)
class Account:
    name: str
    secret: str = field(repr=False)
    roles: frozenset[str]


@dataclass(frozen=True)
class IssuerConfig:
    issuer: str
    key: rsa.RSAPrivateKey = field(repr=False)
    users: Mapping[str, Account]
    clients: Mapping[str, Account]
    audience: str = "auxip"
    lifetime_s: int = 300
    refresh_lifetime_s: int = 1800

    @classmethod
    def from_settings(cls, settings: IssuerSettings, *, issuer: str | None = None) -> IssuerConfig:
        return cls(
            issuer=issuer or local_issuer(settings.port_base),
            key=load_or_create_key(key_path(settings.state_dir)),
            users=parse_accounts(settings.local_users.get_secret_value(), "AUXIP_LOCAL_USERS"),
            clients=parse_accounts(settings.local_clients.get_secret_value(),
                                   "AUXIP_LOCAL_CLIENTS"),
            audience=settings.auth_audience, lifetime_s=settings.token_lifetime_s,
            refresh_lifetime_s=settings.refresh_lifetime_s,
        )


def parse_accounts(spec: str, variable: str) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for number, entry in enumerate(filter(None, (e.strip() for e in spec.split(";"))), 1):
        name, sep1, rest = entry.partition(":")
        secret, sep2, roles = rest.rpartition(":")
        if not (sep1 and sep2 and name and secret):
            # By position: the entry holds a password.
            raise ValueError(f"{variable} entry {number} is not name:password:roles")
        accounts[name] = Account(name, secret,
                                 frozenset(r.strip() for r in roles.split(",") if r.strip()))
    return accounts


def key_path(state_dir: Path) -> Path:
    return state_dir / "token-issuer" / "key.pem"


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The realm's signing key, made at first start so tokens survive restarts."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            try:
                os.link(scratch, path)  # atomic and never overwrites: two first starts agree
            except FileExistsError:
                pass
        finally:
            scratch.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by others; restricting it to its owner", path)
        path.chmod(0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    jwk: dict[str, str] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    # RFC 7638 thumbprint: the kid follows the key, so a new key.pem is a new kid.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"),
                           sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    return {"kid": kid.decode(), "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": jwk["n"], "e": jwk["e"]}


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def create_app(config: IssuerConfig) -> Flask:
    app = Flask(__name__)
    realm = f"/realms/{LOCAL_REALM}"
    oidc = f"{realm}/protocol/openid-connect"
    jwk = public_jwk(config.key)
    endpoint = f"{config.issuer}/protocol/openid-connect"
    subjects = {_user_subject(name): user for name, user in config.users.items()}

    discovery = {
        "issuer": config.issuer,
        "token_endpoint": f"{endpoint}/token",
        "jwks_uri": f"{endpoint}/certs",
        "grant_types_supported": ["password", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "jti",
                             "preferred_username", "realm_access"],
    }

    @app.get(f"{realm}/.well-known/openid-configuration")
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
            body = _grant(config, jwk["kid"], subjects)
            response = jsonify(body)
        except _OAuthError as exc:
            response = jsonify({"error": exc.error, "error_description": exc.description})
            response.status_code = exc.status
        # RFC 6749 5.1: token responses are never cached.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    return app


def _grant(config: IssuerConfig, kid: str, subjects: Mapping[str, Account]) -> dict[str, Any]:
    form = request.form
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _OAuthError(400, "invalid_request", "Missing form parameter: grant_type")
    client_id, client_secret = _client_credentials(default=config.audience)
    client = config.clients.get(client_id)
    if client is not None and not (
            client_secret is not None and hmac.compare_digest(client_secret.encode(),
                                                              client.secret.encode())):
        raise _OAuthError(401, "invalid_client", _BAD_CLIENT)
    issue = _Issue(config, kid, client_id)

    if grant_type == "password":
        user = config.users.get(form.get("username", ""))
        password = form.get("password", "")
        if user is None or not hmac.compare_digest(password.encode(), user.secret.encode()):
            raise _OAuthError(401, "invalid_grant", "Invalid user credentials")
        return issue(_user_subject(user.name), user.name, user.roles, refresh=True)
    if grant_type == "client_credentials":
        if client is None:
            raise _OAuthError(400, "unauthorized_client",
                              "Public client not allowed to retrieve service account")
        username = f"service-account-{client.name}"
        return issue(str(uuid.uuid5(_SUBJECTS, f"client:{client.name}")), username,
                     client.roles, refresh=False)
    if grant_type == "refresh_token":
        claims = _refresh_claims(config, form.get("refresh_token", ""))
        if claims.get("azp") != client_id:
            raise _OAuthError(400, "invalid_grant", "Invalid refresh token. Token client "
                                                    "and authorized client don't match")
        user = subjects.get(claims.get("sub", ""))
        if user is None:  # removed from AUXIP_LOCAL_USERS since
            raise _OAuthError(400, "invalid_grant", "Invalid refresh token")
        return issue(claims["sub"], user.name, user.roles, refresh=True,
                     session=claims.get("sid"))
    raise _OAuthError(400, "unsupported_grant_type", "Unsupported grant_type")


@dataclass(frozen=True)
class _Issue:
    config: IssuerConfig
    kid: str
    client_id: str

    def __call__(self, subject: str, username: str, roles: frozenset[str], *, refresh: bool,
                 session: str | None = None) -> dict[str, Any]:
        c, now = self.config, int(time.time())
        session = session or str(uuid.uuid4())
        common = {"iat": now, "iss": c.issuer, "sub": subject, "azp": self.client_id,
                  "sid": session, "scope": _SCOPE}
        access = {**common, "exp": now + c.lifetime_s, "jti": str(uuid.uuid4()),
                  "aud": c.audience, "typ": "Bearer", "preferred_username": username,
                  "realm_access": {"roles": sorted(roles | {_DEFAULT_ROLE})}}
        body: dict[str, Any] = {
            "access_token": self._sign(access), "expires_in": c.lifetime_s,
            "refresh_expires_in": c.refresh_lifetime_s if refresh else 0,
            "token_type": "Bearer", "not-before-policy": 0, "session_state": session,
            "scope": _SCOPE,
        }
        if refresh:
            body["refresh_token"] = self._sign({
                **common, "exp": now + c.refresh_lifetime_s, "jti": str(uuid.uuid4()),
                "aud": c.issuer, "typ": "Refresh"})
        return body

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.config.key, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "JWT"})


def _refresh_claims(config: IssuerConfig, token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, config.key.public_key(), algorithms=["RS256"],
                            audience=config.issuer, issuer=config.issuer,
                            options={"require": ["exp", "sub", "typ"]})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise _OAuthError(400, "invalid_grant", "Invalid refresh token") from None
    if claims.get("typ") != "Refresh":
        raise _OAuthError(400, "invalid_grant", "Invalid refresh token")
    return claims


def _client_credentials(*, default: str) -> tuple[str, str | None]:
    """client_secret_basic first (RFC 6749 2.3.1: form-urlencoded inside Basic), then the
    form; with neither, the audience's own client id, for scripts that send only a name
    and a password."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            raise _OAuthError(401, "invalid_client", _BAD_CLIENT) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise _OAuthError(401, "invalid_client", _BAD_CLIENT)
        return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    return request.form.get("client_id") or default, request.form.get("client_secret")


def _user_subject(name: str) -> str:
    # Stable across restarts, like a Keycloak user id, so subscriptions keep their owner.
    return str(uuid.uuid5(_SUBJECTS, f"user:{name}"))
