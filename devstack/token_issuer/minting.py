"""Tokens shaped as a Keycloak realm shapes them: the access token (RS256, `azp`, `aud` from
the client's audience mappers and from the clients whose roles the user holds,
`realm_access`, `resource_access`, `preferred_username`), the refresh token (`typ`
Refresh, `aud` the issuer) and, when `openid` is asked for, the ID token (`aud` the client,
`nonce`, `at_hash`, `auth_time`)."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.token_issuer.realm_file import DEFAULT_ROLES, Client, Realm, User

_SUBJECTS = uuid.UUID("5b0f6c9e-2d4a-4f1e-9a63-7c2e8d1b0a54")
DEFAULT_SCOPES = ("profile", "email")  # Keycloak's default client scopes that name claims
OPENID = "openid"


def subject_of(user: User) -> str:
    # Stable across restarts, like a Keycloak user id, so subscriptions keep their owner.
    if user.serviceAccountClientId is not None:
        return str(uuid.uuid5(_SUBJECTS, f"client:{user.serviceAccountClientId}"))
    return str(uuid.uuid5(_SUBJECTS, f"user:{user.username}"))


def granted_scope(requested: str | None) -> str:
    """What the token says it grants: `openid` when asked for, and the default scopes."""
    asked = set((requested or "").split())
    return " ".join(([OPENID] if OPENID in asked else []) + list(DEFAULT_SCOPES))


@dataclass(frozen=True)
class Grant:
    """What one token response is about."""

    client_id: str  # as presented: `azp` (an unregistered id borrows another's settings)
    client: Client  # whose settings apply
    user: User
    scope: str
    refresh: bool
    session: str = field(default_factory=lambda: str(uuid.uuid4()))
    auth_time: int | None = None
    nonce: str | None = None


@dataclass(frozen=True)
class Minter:
    issuer: str
    key: rsa.RSAPrivateKey = field(repr=False)
    kid: str
    realm: Realm
    lifetime_s: int
    refresh_lifetime_s: int

    def response(self, grant: Grant) -> dict[str, Any]:
        now = int(time.time())
        access = self.sign(self.access_claims(grant, now))
        body: dict[str, Any] = {
            "access_token": access, "expires_in": self.lifetime_s,
            "refresh_expires_in": self.refresh_lifetime_s if grant.refresh else 0,
            "token_type": "Bearer", "not-before-policy": 0, "scope": grant.scope,
        }
        if grant.refresh:
            body["refresh_token"] = self.sign(self._refresh_claims(grant, now))
            body["session_state"] = grant.session
        if OPENID in grant.scope.split():
            body["id_token"] = self.sign(self._id_claims(grant, now, access))
        return body

    def access_claims(self, grant: Grant, now: int) -> dict[str, Any]:
        user = grant.user
        resource_access = {client_id: {"roles": sorted(set(roles))}
                           for client_id, roles in sorted(user.clientRoles.items()) if roles}
        # Keycloak's audience resolve: a client whose roles the token carries is an audience
        # of it, the requesting client excepted.
        audiences = list(dict.fromkeys(
            [*grant.client.audiences, *(c for c in resource_access if c != grant.client_id)]))
        claims: dict[str, Any] = {
            "exp": now + self.lifetime_s, "iat": now, "jti": str(uuid.uuid4()),
            "iss": self.issuer,
        }
        if grant.auth_time is not None:
            claims["auth_time"] = grant.auth_time
        if audiences:
            claims["aud"] = audiences[0] if len(audiences) == 1 else audiences
        claims.update({
            "sub": subject_of(user), "typ": "Bearer", "azp": grant.client_id,
            "sid": grant.session, "acr": "1",
            "realm_access": {"roles": sorted(set(user.realmRoles) | set(DEFAULT_ROLES))},
        })
        if resource_access:
            claims["resource_access"] = resource_access
        claims["scope"] = grant.scope
        claims.update(self.profile_claims(user))
        if user.serviceAccountClientId is not None:
            claims["clientId"] = user.serviceAccountClientId
        return claims

    def profile_claims(self, user: User) -> dict[str, Any]:
        """What the `profile` and `email` scopes add (and what userinfo answers)."""
        claims: dict[str, Any] = {"email_verified": user.emailVerified,
                                  "preferred_username": user.username}
        names = [n for n in (user.firstName, user.lastName) if n]
        if names:
            claims["name"] = " ".join(names)
        if user.firstName:
            claims["given_name"] = user.firstName
        if user.lastName:
            claims["family_name"] = user.lastName
        if user.email:
            claims["email"] = user.email
        return claims

    def _refresh_claims(self, grant: Grant, now: int) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "exp": now + self.refresh_lifetime_s, "iat": now, "jti": str(uuid.uuid4()),
            "iss": self.issuer, "aud": self.issuer, "sub": subject_of(grant.user),
            "typ": "Refresh", "azp": grant.client_id, "sid": grant.session,
            "scope": grant.scope,
        }
        if grant.auth_time is not None:
            claims["auth_time"] = grant.auth_time  # the session's, for later ID tokens
        return claims

    def _id_claims(self, grant: Grant, now: int, access_token: str) -> dict[str, Any]:
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims: dict[str, Any] = {
            "exp": now + self.lifetime_s, "iat": now,
            "auth_time": grant.auth_time if grant.auth_time is not None else now,
            "jti": str(uuid.uuid4()), "iss": self.issuer, "aud": grant.client_id,
            "sub": subject_of(grant.user), "typ": "ID", "azp": grant.client_id,
            "sid": grant.session,
            # OIDC Core 3.1.3.6: the left half of the access token's hash.
            "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode(),
            "acr": "1",
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(self.profile_claims(grant.user))
        return claims

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "JWT"})

    def verify(self, token: str, *, audience: str | None, typ: str) -> dict[str, Any]:
        """Claims of a token this realm signed, of type `typ`; jwt.PyJWTError otherwise."""
        options: dict[str, Any] = {"require": ["exp", "sub", "typ"]}
        if audience is None:
            options["verify_aud"] = False
        claims = jwt.decode(token, self.key.public_key(), algorithms=["RS256"],
                            audience=audience, issuer=self.issuer, options=options)
        if claims.get("typ") != typ:
            raise jwt.InvalidTokenError(f"not a {typ} token")
        return claims

    def user_of(self, claims: dict[str, Any]) -> User | None:
        """The realm's user a token of ours stands for, if still there and enabled."""
        client_id = claims.get("clientId")
        if isinstance(client_id, str) and self.realm.client(client_id) is not None:
            candidates = [self.realm.service_account(client_id)]
        else:
            candidates = self.realm.users
        for user in candidates:
            if subject_of(user) == claims.get("sub"):
                return user if user.enabled else None
        return None
