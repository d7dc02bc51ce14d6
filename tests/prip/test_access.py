"""Who may do what: forged, expired, foreign and misdirected tokens are 401 with a
challenge everywhere; roles decide the rest; anonymous catalogue queries only when
configured, and never anonymous downloads."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator

import pytest

from tests.prip.catalogue import pid
from tests.prip.conftest import reset_caches

pytestmark = pytest.mark.usefixtures("seeded")

PATHS = ["Products", f"Products({pid(1)})", f"Products({pid(1)})/$value", "Subscriptions",
         "$metadata"]


def _claims(issuer, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": issuer.issuer, "sub": "b6f3c3c4-0000-4000-8000-000000000001",
              "aud": "auxip", "azp": "auxip", "typ": "Bearer", "iat": now, "exp": now + 300,
              "preferred_username": "mallory",
              "realm_access": {"roles": ["reader", "subscriber", "operator"]}}
    claims.update(changes)
    return claims


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["operator"]}
    return f"{header}.{_b64(claims)}.{signature}"


def _bad_tokens(issuer, other_issuer) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": issuer.sign(_claims(issuer, iat=now - 7200, exp=now - 3600)),
        "other issuer": other_issuer.token("alice"),
        "tampered": _tampered(issuer.token("alice")),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(issuer))}.",
        "wrong audience": issuer.sign(_claims(issuer, aud="someone-else", azp="someone-else")),
        "refresh token": issuer.sign(_claims(issuer, typ="Refresh")),
        "garbage": "not-a-token",
    }


@pytest.mark.parametrize("kind", ["expired", "other issuer", "tampered", "alg none",
                                  "wrong audience", "refresh token", "garbage"])
def test_bad_tokens_are_401_with_a_challenge_everywhere(api, issuer, other_issuer, kind):
    token = _bad_tokens(issuer, other_issuer)[kind]
    for path in PATHS:
        answer = api.get(path, user=None, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (kind, path, answer.text)
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="auxip"') and 'error="invalid_token"' in challenge
        assert answer.json()["error"]["code"] == "invalid_token"
    as_query = api.get(f"Products({pid(1)})/$value", user=None, params={"token": token})
    assert as_query.status_code == 401


def test_no_credentials_is_401_without_error_code(api):
    for path in PATHS:
        answer = api.get(path, user=None)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="auxip"'
        assert answer.json()["error"]["code"] == "missing_credentials"


def test_unsupported_scheme_is_401(api):
    answer = api.get("Products", user=None, headers={"Authorization": "Basic YTpi"})
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers


def test_roles(api):
    assert api.get("Products", user="sam").status_code == 403  # subscriber, not a reader
    assert api.get("Subscriptions", user="alice").status_code == 403  # reader only
    assert api.get("Subscriptions", user="bob").status_code == 200
    assert api.get("Subscriptions", user="ops").status_code == 200  # operator implies all
    assert api.get(f"Products({pid(1)})/$value", user="ops").status_code == 200


@pytest.fixture
def anonymous_catalogue(function_env) -> Iterator[None]:
    os.environ["AUXIP_ANONYMOUS_CATALOGUE"] = "true"
    reset_caches()
    yield
    del os.environ["AUXIP_ANONYMOUS_CATALOGUE"]
    reset_caches()


def test_anonymous_catalogue_when_configured(api, anonymous_catalogue, issuer, other_issuer):
    assert api.get("Products", user=None).status_code == 200
    assert api.get(f"Products({pid(1)})", user=None).status_code == 200
    assert api.get("$metadata", user=None).status_code == 200
    assert api.get(f"Products({pid(1)})/$value", user=None).status_code == 401
    assert api.get("Subscriptions", user=None).status_code == 401
    forged = _bad_tokens(issuer, other_issuer)["tampered"]
    refused = api.get("Products", user=None, headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401  # bad credentials are refused, not treated as none
