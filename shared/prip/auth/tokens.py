"""Validation of OIDC access tokens from a Keycloak realm (or anything shaped like one).

A token is accepted when all of these hold:
- it is a JWS signed with one of AuthSettings.algorithms (never `none` or HS*), by a key
  of the issuer's JWKS, chosen by `kid` (a token without `kid` only when exactly one
  published key fits the algorithm); keys named or carried by the token itself (`jku`,
  `x5u`, `jwk`) are never used, and `crit` extensions are refused;
- `iss` equals the configured issuer, exactly;
- the audience matches one of AUXIP_AUTH_AUDIENCE's: `aud` (a string or a list) holds
  it, OR `azp` equals it. Keycloak puts the requesting client in `azp`, and without an
  audience mapper its `aud` is `account` (or absent), so a token the `auxip` client
  obtained for itself carries `azp: auxip` only. Accepting `azp` keeps realms working
  without an extra mapper; it still refuses tokens issued to other clients of the realm
  for other audiences;
- `exp` and `iat` are present; `exp`, `nbf`, `iat` hold within the leeway;
- `typ`, when present, is `Bearer`: refresh and ID tokens of the same realm are refused;
- `sub` is present (it owns subscriptions).
Roles: `realm_access.roles` plus `resource_access.<audience>.roles` of each accepted audience.

Tokens are never logged, whole or in part.

A client sends the same token with every request until it expires: the signature
verified once (~0.5 ms of base64 checks, JSON and the signature itself) is remembered for
that token, with the key that verified it (a few hundred tokens at most).
Only the signature is remembered: the claims are checked again at every request against
the clock (expiry), and a key no longer published (rotated out of the JWKS) means the
token is verified again, so refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from shared.core.recently_used import RecentlyUsed
from shared.prip.auth.principal import Principal
from shared.prip.auth.settings import AuthSettings

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 16 * 1024  # Keycloak tokens are a few KiB; anything far larger is abuse
_RETRY_UNREACHABLE_S = 1.0  # with no keys at all, how often an outage is retried

_KTY_OF = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CURVE_OF = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}
_FROM_JWK = {"RSA": RSAAlgorithm.from_jwk, "EC": ECAlgorithm.from_jwk, "OKP": OKPAlgorithm.from_jwk}


class AuthError(Exception):
    """A refusal: status 401 (no or bad credentials), 403 (not allowed), or 503 (the
    issuer's keys cannot be fetched: not the client's fault, so not a 401 that would make
    it drop a good token)."""

    def __init__(self, status: int, code: str, message: str, *, reason: str | None = None,
                 user: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # For the security event (docs/security-events.md): a stable reason code, and the
        # user the credentials named when they were checked far enough to trust the name.
        self.reason = reason or code
        self.user = user

    def __repr__(self) -> str:
        return f"AuthError({self.status}, {self.code!r}, {self.message!r})"


def _invalid(message: str, reason: str, user: str | None = None) -> AuthError:
    return AuthError(401, "invalid_token", message, reason=reason, user=user)


@dataclass(frozen=True)
class _Jwk:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    key: Any  # a cryptography public key

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False  # a JWK that names its algorithm is for that one only (RFC 7517)
        if _KTY_OF.get(alg[:2]) != self.kty:
            return False
        return alg not in _CURVE_OF or _CURVE_OF[alg] == self.crv


class _KeySet:
    """The issuer's signing keys: discovered, fetched with httpx, cached, refreshed when old
    and refetched on an unknown `kid` at most once per `min_interval` (unknown kids are
    free for anyone to send; a fetch per request would hammer the issuer)."""

    def __init__(self, settings: AuthSettings, http: httpx.Client, clock: Callable[[], float]):
        self._issuer = settings.issuer
        self._jwks_url = settings.auth_jwks_url
        self._max_age = settings.auth_jwks_max_age_s
        self._min_interval = settings.auth_jwks_min_interval_s
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[_Jwk] = []
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not

    def key_for(self, kid: str | None, alg: str) -> Any:
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at > self._max_age:
                wait = self._min_interval if self._fetched_at is not None else _RETRY_UNREACHABLE_S
                if self._tried_at is None or now - self._tried_at >= wait:
                    self._refresh(now)
            if self._fetched_at is None:
                raise AuthError(503, "temporarily_unavailable",
                                "the token issuer's signing keys cannot be fetched")
            found = self._find(kid, alg)
            rested = now - (self._tried_at or 0) >= self._min_interval
            if found is None and kid is not None and rested:
                self._refresh(now)  # perhaps a key rotated in since the last fetch
                found = self._find(kid, alg)
            if found is None:
                raise _invalid("token signed with an unknown key", "unknown_key")
            return found.key

    def _find(self, kid: str | None, alg: str) -> _Jwk | None:
        fitting = [k for k in self._keys if k.fits(alg) and (kid is None or k.kid == kid)]
        if kid is None and len(fitting) != 1:
            return None  # without a kid, guessing among several keys is not on
        return fitting[0] if fitting else None

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            keys = self._fetch()
        except (httpx.HTTPError, ValueError, TypeError, KeyError) as exc:
            # Keep serving with the keys we have: an issuer outage must not lock everyone out.
            log.warning("fetching the JWKS of %s failed: %s", self._issuer, exc)
            return
        self._keys, self._fetched_at = keys, now
        log.info("JWKS of %s: %d usable signing keys", self._issuer, len(keys))

    def _fetch(self) -> list[_Jwk]:
        if self._jwks_url is None:
            url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = _get_json(self._http, url)
            if document.get("issuer") != self._issuer:
                # OIDC Discovery 4.3: a document for another issuer must not be used.
                raise ValueError(f"{url} describes issuer {document.get('issuer')!r}")
            jwks_uri = document["jwks_uri"]
            if not isinstance(jwks_uri, str):
                raise ValueError("jwks_uri is not a string")
            self._jwks_url = jwks_uri  # discovered once per process
        entries = _get_json(self._http, self._jwks_url)["keys"]
        if not isinstance(entries, list):
            raise ValueError("JWKS `keys` is not a list")
        return [k for k in map(_parse_jwk, entries) if k is not None]


def _get_json(http: httpx.Client, url: str) -> dict[str, Any]:
    response = http.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return body


def _parse_jwk(entry: object) -> _Jwk | None:
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    kty = entry.get("kty")
    if kty not in _FROM_JWK:
        return None  # `oct` (symmetric) keys in particular are never used
    try:
        key = _FROM_JWK[kty](entry)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        log.warning("skipping unusable JWK kid=%r: %s", entry.get("kid"), exc)
        return None
    if hasattr(key, "public_key"):  # a private JWK, published by mistake: use its public half
        key = key.public_key()
    kid, crv, alg = entry.get("kid"), entry.get("crv"), entry.get("alg")
    return _Jwk(kid if isinstance(kid, str) else None, kty,
                crv if isinstance(crv, str) else None, alg if isinstance(alg, str) else None, key)


@dataclass(frozen=True)
class _Signed:
    kid: str | None
    alg: str
    key: Any  # the key that verified it: the same object while the JWKS keeps it
    claims: dict[str, Any]


VERIFIED_TOKENS = 256  # distinct clients' tokens remembered; ~2 KiB each


class TokenValidator:
    def __init__(self, settings: AuthSettings, *, http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.time):
        if not settings.issuer:
            raise ValueError("a token validator needs an issuer (AUXIP_AUTH_ISSUER)")
        self.issuer: str = settings.issuer
        self.audiences = frozenset(settings.audiences)
        self._algorithms = settings.algorithms
        self._leeway = settings.auth_leeway_s
        self._clock = clock
        http = http or httpx.Client(timeout=settings.auth_http_timeout_s)
        self._keys = _KeySet(settings, http, clock)
        self._verified = RecentlyUsed[str, _Signed](VERIFIED_TOKENS)

    def validate(self, token: str) -> Principal:
        """The principal a bearer token stands for; AuthError for anything else."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise _invalid("malformed token", "malformed")
        signed = self._verified.get(token)
        if signed is not None and self._keys.key_for(signed.kid, signed.alg) is signed.key:
            return self._principal(signed.claims)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _invalid("malformed token", "malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _invalid("signature algorithm not accepted",
                           "alg_none" if str(alg).lower() == "none" else "alg_not_accepted")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("malformed token", "malformed")
        if "crit" in header or "b64" in header:
            raise _invalid("critical header extensions are not supported", "malformed")
        key = self._keys.key_for(kid, alg)
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], options={
                # Only the signature here; the claims are checked below, against our clock.
                "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False, "verify_aud": False, "verify_iss": False,
                "verify_sub": False, "verify_jti": False, "require": [],
            })
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _invalid("invalid token signature", "bad_signature") from None
        if not isinstance(claims, dict):
            raise _invalid("malformed token", "malformed")
        principal = self._principal(claims)  # raises for a token refused on its claims
        self._verified.put(token, _Signed(kid, alg, key, claims))
        return principal

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        now = self._clock()
        # The signature is good: the name the token gives is the issuer's, worth reporting.
        named = _name_in(claims)
        if claims.get("iss") != self.issuer:
            raise _invalid("token of another issuer", "wrong_issuer", named)
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", None)
        if not _is_time(exp) or not _is_time(iat) or (nbf is not None and not _is_time(nbf)):
            raise _invalid("token lacks valid exp/iat", "malformed", named)
        if now > exp + self._leeway:
            raise _invalid("token expired", "expired", named)
        if nbf is not None and now + self._leeway < nbf:
            raise _invalid("token not yet valid", "not_yet_valid", named)
        if now + self._leeway < iat:
            raise _invalid("token issued in the future", "not_yet_valid", named)
        typ = claims.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() != "bearer"):
            raise _invalid("not an access token", "not_access_token", named)
        if not self._for_us(claims):
            raise _invalid("token not issued for this audience", "wrong_audience", named)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _invalid("token lacks a subject", "malformed", named)
        username = claims.get("preferred_username")
        return Principal(subject=subject,
                         username=username if isinstance(username, str) and username else subject,
                         roles=frozenset(self._roles(claims)))

    def _for_us(self, claims: Mapping[str, Any]) -> bool:
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        azp = claims.get("azp")
        return (any(a in self.audiences for a in audiences if isinstance(a, str))
                or (isinstance(azp, str) and azp in self.audiences))

    def _roles(self, claims: Mapping[str, Any]) -> set[str]:
        roles = _role_list(claims.get("realm_access"))
        resource_access = claims.get("resource_access")
        if isinstance(resource_access, dict):
            for audience in self.audiences:
                roles |= _role_list(resource_access.get(audience))
        return roles


def _name_in(claims: Mapping[str, Any]) -> str | None:
    for claim in ("preferred_username", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value[:256]
    return None


def _is_time(value: object) -> bool:
    # The range also keeps huge JSON integers (float overflow) and NaN/inf out.
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and -2**53 < value < 2**53)


def _role_list(access: object) -> set[str]:
    roles = access.get("roles") if isinstance(access, dict) else None
    return {r for r in roles if isinstance(r, str)} if isinstance(roles, list) else set()
