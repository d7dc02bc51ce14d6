"""OAuth2 access tokens for the services auxip polls or pushes to: password or
client-credentials grant at a token endpoint (Keycloak realms, ESA IAM), kept until
shortly before they expire, renewed with the refresh token when there is one, granted
anew otherwise or when the service says 401.

Tokens are kept per process across poll runs (a PingSource ticks every minute; a grant
each time would be noise at the IdP)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from shared.pipeline.routing.config import OAuth2

# Renew this long before expiry (at most a tenth of the lifetime, for short-lived tokens).
MARGIN_S = 30.0


class TokenError(RuntimeError):
    pass


@dataclass
class _Token:
    access: str
    expires_at: float
    refresh: str | None
    refresh_expires_at: float


class TokenClient:
    def __init__(self, config: OAuth2, http: httpx.Client,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self.grants = 0  # requests made to the token endpoint (for logs and tests)
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def authorization(self) -> str:
        """`Bearer <token>`, valid now."""
        with self._lock:
            now = self.clock()
            if self._token is None or now >= self._token.expires_at:
                self._token = self._renew(now)
            return f"Bearer {self._token.access}"

    def invalidate(self) -> None:
        """The service refused the token (revoked, or clocks disagree): get another."""
        with self._lock:
            if self._token is not None:
                self._token.expires_at = 0.0

    def _renew(self, now: float) -> _Token:
        old = self._token
        if old is not None and old.refresh and now < old.refresh_expires_at:
            try:
                return self._request({"grant_type": "refresh_token",
                                      "refresh_token": old.refresh}, now)
            except TokenError:
                pass  # a refresh token the IdP forgot (restart, logout): grant anew
        c = self.config
        form = {"grant_type": c.grant}
        if c.grant == "password":
            form.update(username=c.username or "", password=c.password or "")
        if c.scope:
            form["scope"] = c.scope
        return self._request(form, now)

    def _request(self, form: dict[str, str], now: float) -> _Token:
        c = self.config
        form = {**form, "client_id": c.client_id}
        if c.client_secret:
            form["client_secret"] = c.client_secret
        self.grants += 1
        try:
            answer = self.http.post(c.token_url, data=form)
        except httpx.HTTPError as error:
            raise TokenError(f"token endpoint {c.token_url}: {type(error).__name__}: "
                             f"{error}") from None
        if answer.status_code != 200:
            # The error body of an IdP names the problem; it never echoes the password.
            raise TokenError(f"token endpoint {c.token_url}: HTTP {answer.status_code} "
                             f"{answer.text[:200]}")
        try:
            body = answer.json()
            access = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 60)
        except (ValueError, KeyError, TypeError):
            raise TokenError(f"token endpoint {c.token_url}: no access_token in the answer"
                             ) from None
        refresh_lifetime = float(body.get("refresh_expires_in") or 0)
        margin = min(MARGIN_S, lifetime / 10)
        return _Token(access=access, expires_at=now + lifetime - margin,
                      refresh=body.get("refresh_token"),
                      refresh_expires_at=now + refresh_lifetime - min(MARGIN_S,
                                                                      refresh_lifetime / 10))


_CLIENTS: dict[str, TokenClient] = {}
_CLIENTS_LOCK = threading.Lock()


def token_client(config: OAuth2) -> TokenClient:
    """The process's token client for these credentials (a rotated secret is a new one)."""
    identity = "\0".join(str(v) for v in (config.token_url, config.grant, config.client_id,
                                          config.client_secret, config.username,
                                          config.password, config.scope))
    key = hashlib.sha256(identity.encode()).hexdigest()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            http = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0),
                                headers={"User-Agent": "auxip"})
            client = _CLIENTS[key] = TokenClient(config, http)
        return client
