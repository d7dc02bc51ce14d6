"""The authorization-code flow with PKCE (RFC 6749 4.1, RFC 7636, OIDC Core 3.1): the
checks of an authorization request, the one-time codes, the login page.

Which mistakes are shown and which are sent back: an unknown client or a redirect URI the
client did not register is shown on the page and never redirected (RFC 6749 4.1.2.1: the
URI cannot be trusted); every other mistake goes back to the redirect URI as `error`, with
`state` and `iss` (RFC 9207). PKCE is S256 only, required of public clients and of clients
whose `pkce.code.challenge.method` attribute says S256. Codes live 60 s, in this process,
and are good once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from devstack.token_issuer.realm_file import Client, Realm, User

CODE_LIFETIME_S = 60
_PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 4.1 (verifier), 4.2 (S256 challenge)
# What the page passes on from the request to the login POST.
FORWARDED = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
             "code_challenge", "code_challenge_method", "response_mode")


class PageError(Exception):
    """A request that cannot be answered by redirect: shown to the person."""


@dataclass(frozen=True)
class RedirectError(Exception):
    redirect_uri: str
    state: str | None
    error: str
    description: str


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    state: str | None
    scope: str | None
    nonce: str | None
    code_challenge: str | None
    params: Mapping[str, str]  # as received, for the login form

    def refuse(self, error: str, description: str) -> RedirectError:
        return RedirectError(self.redirect_uri, self.state, error, description)


def parse_request(realm: Realm, params: Mapping[str, str]) -> AuthorizationRequest:
    client_id = params.get("client_id", "")
    client = realm.client(client_id)
    if client is None:
        raise PageError("Client not found.")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        exact = [u for u in client.redirectUris if not u.endswith("*")]
        if len(exact) != 1:  # OIDC: required; OAuth 2: may be left out when unambiguous
            raise PageError("Invalid parameter: redirect_uri")
        redirect_uri = exact[0]
    if not client.allows_redirect(redirect_uri):
        raise PageError("Invalid parameter: redirect_uri")
    request = AuthorizationRequest(
        client=client, redirect_uri=redirect_uri, state=params.get("state"),
        scope=params.get("scope"), nonce=params.get("nonce"),
        code_challenge=params.get("code_challenge"),
        params={k: params[k] for k in FORWARDED if k in params})
    if "request" in params:
        raise request.refuse("request_not_supported", "Request objects are not supported")
    if "request_uri" in params:
        raise request.refuse("request_uri_not_supported", "request_uri is not supported")
    if params.get("response_type") != "code":
        raise request.refuse("unsupported_response_type",
                             "Only response_type=code is served (authorization code with PKCE)")
    if params.get("response_mode", "query") != "query":
        raise request.refuse("invalid_request", "Invalid parameter: response_mode")
    if not client.standardFlowEnabled:
        raise request.refuse("unauthorized_client", "Client is not allowed to initiate browser "
                             "login with given response_type. Standard flow is disabled for the "
                             "client.")
    method = params.get("code_challenge_method")
    if request.code_challenge is None:
        if client.pkce_required:
            raise request.refuse("invalid_request", "Missing parameter: code_challenge_method")
    elif method != "S256" or not _PKCE.fullmatch(request.code_challenge):
        raise request.refuse("invalid_request", "Invalid parameter: code challenge method is "
                             "not matching the configured one")
    if params.get("prompt") == "none":
        raise request.refuse("login_required", "No session: the user must log in")
    return request


@dataclass(frozen=True)
class IssuedCode:
    request: AuthorizationRequest
    user: User
    session: str
    auth_time: int
    expires: float


@dataclass
class Codes:
    """The codes given out and not yet redeemed."""

    _codes: dict[str, IssuedCode] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, request: AuthorizationRequest, user: User, session: str) -> str:
        code = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for stale in [c for c, i in self._codes.items() if i.expires < now]:
                del self._codes[stale]
            self._codes[code] = IssuedCode(request, user, session, int(time.time()),
                                           now + CODE_LIFETIME_S)
        return code

    def redeem(self, code: str) -> IssuedCode | None:
        """The code's grant, once: a second use, or a use after 60 s, finds nothing."""
        with self._lock:
            issued = self._codes.pop(code, None)
        if issued is None or issued.expires < time.monotonic():
            return None
        return issued


def pkce_holds(challenge: str, verifier: str) -> bool:
    if not _PKCE.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(expected, challenge)


def login_page(action: str, request: AuthorizationRequest | None, message: str | None, *,
               username: str = "") -> str:
    """The login form (or, without a request, the message alone)."""
    e = html.escape
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<title>Sign in to auxip (local realm)</title>",
             "<style>body{font-family:sans-serif;max-width:26em;margin:4em auto}"
             "label,input,button{display:block;margin:.4em 0}.error{color:#a00}</style>",
             "</head><body><h1>auxip: local realm</h1>"]
    if message:
        parts.append(f'<p class="error" role="alert">{e(message)}</p>')
    if request is not None:
        parts.append(f"<p>Sign in for <b>{e(request.client.clientId)}</b>.</p>")
        parts.append(f'<form method="post" action="{e(action)}">')
        parts.extend(f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
                     for k, v in request.params.items())
        parts.append(f'<label>Username <input name="username" value="{e(username)}" '
                     'autocomplete="username" required autofocus></label>'
                     '<label>Password <input name="password" type="password" '
                     'autocomplete="current-password" required></label>'
                     "<button type=submit>Sign in</button></form>")
    parts.append("</body></html>")
    return "".join(parts)
