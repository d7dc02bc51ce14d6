"""Credentials of an HTTP request, framework-free: handlers pass in plain mappings.

    principal = authenticate(request.headers, request.args, validator=..., basic_users=...,
                             allow_query_token=is_download)
    require(principal, READER)            # AuthError 401 when None, 403 without the role

On AuthError: respond `error.status`, with `challenge(error)` as headers when it is 401.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.prip.auth.basic import BasicUsers
from shared.prip.auth.principal import Principal
from shared.prip.auth.settings import AuthSettings
from shared.prip.auth.tokens import AuthError, TokenValidator

REALM = "auxip"
QUERY_TOKEN = "token"
# RFC 6750 error codes; our other codes have no place in a Bearer challenge.
_RFC6750_ERRORS = {"invalid_request", "invalid_token", "insufficient_scope"}
_UNQUOTABLE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')  # RFC 6750 3: error_description


def authenticate(headers: Mapping[str, str], query: Mapping[str, str], *,
                 validator: TokenValidator | None, basic_users: BasicUsers | None,
                 allow_query_token: bool) -> Principal | None:
    """Who sent the request: None when it carries no credentials at all (the caller decides
    whether anonymous is good enough); AuthError when it carries bad ones.

    `Authorization: Bearer`, `Authorization: Basic` (when basic users are configured),
    else the `token` query parameter, read only when `allow_query_token` (downloads: some
    download clients send it so) and ignored elsewhere: URLs end up in logs and histories.
    """
    authorization = _header(headers, "authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            if not credentials:
                raise AuthError(401, "invalid_request", "empty bearer token", reason="malformed")
            return _bearer(credentials, validator)
        if scheme.lower() == "basic" and basic_users:
            return _basic(credentials, basic_users)
        raise AuthError(401, "invalid_request",
                        f"unsupported authorization scheme {_printable(scheme)!r}",
                        reason="unsupported_scheme")
    if allow_query_token:
        token = query.get(QUERY_TOKEN)
        if token:
            return _bearer(token, validator)
    return None


def _bearer(token: str, validator: TokenValidator | None) -> Principal:
    if validator is None:
        raise AuthError(401, "invalid_token", "bearer tokens are not accepted here (no OIDC "
                        "issuer is configured)", reason="no_issuer")
    return validator.validate(token)


def require(principal: Principal | None, role: str) -> Principal:
    if principal is None:
        raise AuthError(401, "missing_credentials", "authentication required",
                        reason="missing")
    if not principal.can(role):
        raise AuthError(403, "insufficient_scope", f"the {role} role is required",
                        reason=f"role_required:{role}", user=principal.username)
    return principal


def challenge(error: AuthError, *, basic: bool = False) -> dict[str, str]:
    """Headers for a refusal: `WWW-Authenticate` per RFC 6750 (and a Basic challenge too
    when legacy Basic users exist). A request without credentials gets no error code
    (RFC 6750 3.1)."""
    if error.status not in (401, 403):
        return {}
    bearer = f'Bearer realm="{REALM}"'
    if error.code in _RFC6750_ERRORS:
        description = _UNQUOTABLE.sub("", error.message)
        bearer += f', error="{error.code}", error_description="{description}"'
    if basic and error.status == 401:
        bearer += f', Basic realm="{REALM}", charset="UTF-8"'
    return {"WWW-Authenticate": bearer}


@dataclass(frozen=True)
class Authenticator:
    """What a function builds once from AuthSettings and keeps for its life."""

    validator: TokenValidator | None  # None: no issuer configured, bearer tokens refused
    basic_users: BasicUsers
    anonymous_catalogue: bool

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticator:
        return cls(TokenValidator(settings) if settings.issuer else None,
                   BasicUsers.from_spec(settings.auth_basic_users.get_secret_value()),
                   settings.anonymous_catalogue)

    def authenticate(self, headers: Mapping[str, str], query: Mapping[str, str], *,
                     allow_query_token: bool = False) -> Principal | None:
        return authenticate(headers, query, validator=self.validator,
                            basic_users=self.basic_users, allow_query_token=allow_query_token)

    def challenge(self, error: AuthError) -> dict[str, str]:
        return challenge(error, basic=bool(self.basic_users))


def _basic(credentials: str, users: BasicUsers) -> Principal:
    try:
        raw = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        raise AuthError(401, "invalid_request", "malformed basic credentials",
                        reason="malformed") from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("latin-1")  # what clients sent before RFC 7617 said UTF-8
    username, sep, password = decoded.partition(":")
    if not sep:
        raise AuthError(401, "invalid_request", "malformed basic credentials",
                        reason="malformed")
    user = users.check(username, password)
    if user is None:
        # The name tried is what a SIEM correlates brute force on (ECS: user.name).
        raise AuthError(401, "invalid_credentials", "invalid username or password",
                        reason="invalid_credentials", user=_printable(username) or None)
    # Prefixed so that a configured name can never pass for an issuer's `sub`.
    return Principal(subject=f"basic:{user.username}", username=user.username, roles=user.roles)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive; framework header maps are not
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _printable(text: str) -> str:
    return _UNQUOTABLE.sub("", text)[:32]
