"""TokenValidator against a real issuer over loopback HTTP (discovery, JWKS, password
grant), the request-level helpers, and Basic auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.adapters.settings import SettingsError
from shared.prip.auth import (
    OPERATOR,
    READER,
    SUBSCRIBER,
    Authenticator,
    AuthError,
    AuthSettings,
    BasicUsers,
    Principal,
    TokenValidator,
    authenticate,
    challenge,
    hash_password,
    require,
)
from shared.prip.auth.basic import parse_basic_users
from tests.devstack.issuer import RunningIssuer


def make_validator(issuer: RunningIssuer, **overrides: Any) -> TokenValidator:
    clock = overrides.pop("clock", time.time)
    http = overrides.pop("http", None)
    settings = AuthSettings(**{"auth_issuer": issuer.issuer, **overrides})
    return TokenValidator(settings, http=http, clock=clock)


@pytest.fixture(scope="module")
def validator(issuer: RunningIssuer) -> TokenValidator:
    return make_validator(issuer)


def claims_for(issuer: RunningIssuer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": issuer.issuer, "aud": "auxip", "azp": "auxip-cli", "sub": "s-1",
              "preferred_username": "carol", "iat": now, "exp": now + 300,
              "jti": "j-1", "typ": "Bearer", "realm_access": {"roles": ["reader"]}}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def refused(validator: TokenValidator, token: str, status: int = 401) -> AuthError:
    with pytest.raises(AuthError) as caught:
        validator.validate(token)
    assert caught.value.status == status, caught.value
    return caught.value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> list[str]:
    return token.split(".")


# --- accepted tokens and roles -----------------------------------------------------------

def test_password_grant_token_is_accepted_with_its_roles(issuer, validator):
    alice = validator.validate(issuer.token("alice", "alice-pw"))
    assert alice.username == "alice" and alice.subject
    assert alice.can(READER) and not alice.can(SUBSCRIBER) and not alice.can(OPERATOR)

    bob = validator.validate(issuer.token("bob", "bob-pw"))
    assert bob.can(READER) and bob.can(SUBSCRIBER) and not bob.can(OPERATOR)


def test_operator_implies_every_role(issuer, validator):
    ops = validator.validate(issuer.token("ops", "ops-pw"))
    assert ops.roles >= {OPERATOR} and READER not in ops.roles
    assert all(ops.can(role) for role in (READER, SUBSCRIBER, OPERATOR, "anything"))


def test_subject_is_stable_across_tokens(issuer, validator):
    first = validator.validate(issuer.token("alice", "alice-pw"))
    second = validator.validate(issuer.token("alice", "alice-pw", client_id="other-cli"))
    assert first.subject == second.subject


def test_roles_come_from_realm_and_from_our_client_only(issuer, validator):
    token = issuer.sign(claims_for(
        issuer, realm_access={"roles": ["reader", "offline_access"]},
        resource_access={"auxip": {"roles": ["subscriber"]},
                         "someone-else": {"roles": ["operator"]}}))
    principal = validator.validate(token)
    assert principal.roles == {"reader", "offline_access", "subscriber"}
    assert not principal.can(OPERATOR)


def test_malformed_role_claims_give_no_roles_rather_than_errors(issuer, validator):
    token = issuer.sign(claims_for(issuer, realm_access={"roles": "operator"},
                                   resource_access=["auxip"]))
    assert validator.validate(token).roles == frozenset()
    token = issuer.sign(claims_for(issuer, realm_access={"roles": ["reader", 7, None]}))
    assert validator.validate(token).roles == {"reader"}


@pytest.mark.parametrize("aud, azp", [
    ("auxip", "anyone"),                # audience mapper, string
    (["account", "auxip"], "anyone"),   # audience mapper, list
    ("account", "auxip"),               # no mapper: Keycloak's default aud, our client in azp
    (None, "auxip"),                    # no aud at all
])
def test_audience_in_aud_or_azp_is_accepted(issuer, validator, aud, azp):
    validator.validate(issuer.sign(claims_for(issuer, aud=aud, azp=azp)))


@pytest.mark.parametrize("aud, azp", [
    ("account", "other-client"), (["account", "broker"], "broker"), (None, None),
    ("auxip-extra", "auxipx"),
])
def test_other_audiences_are_refused(issuer, validator, aud, azp):
    error = refused(validator, issuer.sign(claims_for(issuer, aud=aud, azp=azp)))
    assert "audience" in error.message


def test_a_token_for_another_audience_from_the_same_realm_is_refused(issuer):
    strict = make_validator(issuer, auth_audience="another-service")
    refused(strict, issuer.token("ops", "ops-pw"))


def test_token_without_kid_is_accepted_when_one_key_fits(issuer, validator):
    validator.validate(issuer.sign(claims_for(issuer), kid=None))


# --- refused tokens ----------------------------------------------------------------------

def test_expired_token_from_the_issuer_is_refused(issuer):
    token = issuer.token("alice", "alice-pw")
    later = make_validator(issuer, auth_leeway_s=30, clock=lambda: time.time() + 300 + 31)
    assert "expired" in refused(later, token).message
    within_leeway = make_validator(issuer, auth_leeway_s=30,
                                   clock=lambda: time.time() + 300 + 20)
    within_leeway.validate(token)


def test_expired_signed_token_is_refused(issuer, validator):
    now = int(time.time())
    token = issuer.sign(claims_for(issuer, iat=now - 900, exp=now - 600))
    assert "expired" in refused(validator, token).message


def test_not_yet_valid_token_is_refused(issuer, validator):
    now = int(time.time())
    assert "not yet valid" in refused(
        validator, issuer.sign(claims_for(issuer, nbf=now + 600))).message
    assert "future" in refused(
        validator, issuer.sign(claims_for(issuer, iat=now + 600, exp=now + 900))).message


@pytest.mark.parametrize("missing", ["exp", "iat", "sub"])
def test_tokens_lacking_required_claims_are_refused(issuer, validator, missing):
    claims = claims_for(issuer)
    del claims[missing]
    refused(validator, issuer.sign(claims))


@pytest.mark.parametrize("exp", ["9999999999", True, 10**400, 1e308])
def test_odd_exp_values_are_refused_not_crashing(issuer, validator, exp):
    claims = claims_for(issuer)
    claims["exp"] = exp
    refused(validator, issuer.sign(claims))


def test_token_of_another_issuer_is_refused(issuer, other_issuer, validator):
    assert other_issuer.kid != issuer.kid
    refused(validator, other_issuer.token("alice", "alice-pw"))


def test_token_of_another_key_claiming_our_issuer_is_refused(issuer, other_issuer, validator):
    forged = claims_for(issuer)
    # Its own kid: not in our JWKS. Our kid: the signature does not verify.
    assert "unknown key" in refused(
        validator, other_issuer.sign(forged, kid=other_issuer.kid)).message
    refused(validator, other_issuer.sign(forged, kid=issuer.kid))
    refused(validator, other_issuer.sign(forged, kid=None))


def test_our_key_claiming_another_issuer_is_refused(issuer, validator):
    error = refused(validator, issuer.sign(claims_for(issuer, iss="https://evil/realms/auxip")))
    assert "issuer" in error.message


def test_tampered_payload_is_refused(issuer, validator):
    header, payload, signature = segments(issuer.token("alice", "alice-pw"))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["realm_access"]["roles"] = ["operator"]
    forged = b64url(json.dumps(claims).encode())
    refused(validator, f"{header}.{forged}.{signature}")


def test_tampered_signature_is_refused(issuer, validator):
    header, payload, signature = segments(issuer.token("alice", "alice-pw"))
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[len(raw) // 2] ^= 0x01
    refused(validator, f"{header}.{payload}.{b64url(bytes(raw))}")
    refused(validator, f"{header}.{payload}.")
    refused(validator, f"{header}.{payload}")


def test_alg_none_is_refused(issuer, validator):
    for alg in ("none", "None", "NONE"):
        header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": issuer.kid}).encode())
        payload = b64url(json.dumps(claims_for(issuer)).encode())
        assert "algorithm" in refused(validator, f"{header}.{payload}.").message
    refused(validator, jwt.encode(claims_for(issuer), None, algorithm="none"))


def test_hs256_signed_with_the_public_key_is_refused(issuer, validator):
    """Key confusion: the published key used as an HMAC secret."""
    public = issuer.config.key.public_key()
    secrets = [public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo),
               public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.PKCS1),
               json.dumps(httpx.get(f"{issuer.issuer}/protocol/openid-connect/certs")
                          .json()["keys"][0]).encode()]
    for secret in secrets:
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": issuer.kid}).encode())
            payload = b64url(json.dumps(claims_for(issuer)).encode())
            mac = hmac.new(secret, f"{header}.{payload}".encode(), digest).digest()
            refused(validator, f"{header}.{payload}.{b64url(mac)}")


def test_algorithm_not_fitting_the_key_is_refused(issuer, validator):
    """An EC-signed token naming our RSA key's kid: refused before any verification."""
    other_key = ec.generate_private_key(ec.SECP256R1())
    refused(validator, issuer.sign(claims_for(issuer), key=other_key, alg="ES256"))
    refused(validator, issuer.sign(claims_for(issuer), alg="PS256"))  # not in the allowed list


def test_refresh_and_id_tokens_are_not_access_tokens(issuer, validator):
    response = issuer.password_grant("alice", "alice-pw", client_id="auxip").json()
    assert "not an access token" in refused(validator, response["refresh_token"]).message
    refused(validator, issuer.sign(claims_for(issuer, typ="ID", aud="auxip")))
    refused(validator, issuer.sign(claims_for(issuer, typ=["Bearer"])))


def test_crit_header_is_refused(issuer, validator):
    token = jwt.encode(claims_for(issuer), issuer.config.key, algorithm="RS256",
                       headers={"kid": issuer.kid, "crit": ["exp"]})
    refused(validator, token)


@pytest.mark.parametrize("token", [
    "", " ", "a", "a.b", "a.b.c", "...", "Bearer x", "eyJ.eyJ.sig", "x" * 20_000,
    b64url(b'{"alg":"RS256","kid":5}') + ".e30.c2ln",
    b64url(b'{"alg":["RS256"]}') + ".e30.c2ln",
    b64url(b'[1,2]') + ".e30.c2ln",
    b64url(b'{"alg":"RS256"}') + "." + b64url(b"[]") + ".c2ln",
])
def test_garbage_is_refused_as_401(validator, token):
    refused(validator, token)


# --- the key set -------------------------------------------------------------------------

class CountingClient(httpx.Client):
    def __init__(self) -> None:
        super().__init__(timeout=5)
        self.urls: list[str] = []

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        self.urls.append(str(request.url))
        return super().send(request, **kwargs)


def test_keys_are_discovered_once_and_cached(issuer):
    http = CountingClient()
    validator = make_validator(issuer, http=http)
    for _ in range(3):
        validator.validate(issuer.token("alice", "alice-pw"))
    assert http.urls == [f"{issuer.issuer}/.well-known/openid-configuration",
                         f"{issuer.issuer}/protocol/openid-connect/certs"]


def test_configured_jwks_url_skips_discovery(issuer):
    http = CountingClient()
    validator = make_validator(issuer, http=http,
                               auth_jwks_url=f"{issuer.issuer}/protocol/openid-connect/certs")
    validator.validate(issuer.token("alice", "alice-pw"))
    assert http.urls == [f"{issuer.issuer}/protocol/openid-connect/certs"]


def test_unknown_kid_refetches_once_within_the_rate_bound(issuer):
    http = CountingClient()
    now = [time.time()]
    validator = make_validator(issuer, http=http, clock=lambda: now[0],
                               auth_jwks_min_interval_s=30)
    validator.validate(issuer.token("alice", "alice-pw"))
    fetches = len(http.urls)
    for n in range(5):
        refused(validator, issuer.sign(claims_for(issuer), kid=f"unknown-{n}"))
    assert len(http.urls) == fetches  # just fetched: no refetch for any of them
    now[0] += 31
    for n in range(5):
        refused(validator, issuer.sign(claims_for(issuer, iat=int(now[0]),
                                                  exp=int(now[0]) + 60), kid=f"unknown-{n}"))
    assert len(http.urls) == fetches + 1  # one refetch, then bounded again


def test_rotated_key_is_picked_up_on_its_first_token(own_issuer, tmp_path):
    validator = make_validator(own_issuer, auth_jwks_min_interval_s=0)
    validator.validate(own_issuer.token("alice", "alice-pw"))
    old_kid = own_issuer.kid
    from devstack.token_issuer.app import IssuerConfig, key_path, load_or_create_key
    new_key = load_or_create_key(key_path(tmp_path / "rotated"))
    own_issuer.reconfigure(IssuerConfig(**{**own_issuer.config.__dict__, "key": new_key}))
    assert own_issuer.kid != old_kid
    assert validator.validate(own_issuer.token("bob", "bob-pw")).username == "bob"


def _counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature jwt.decode verifies from now on (the real function)."""
    seen: list[str] = []
    real = jwt.decode

    def decode(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", decode)
    return seen


def test_a_token_is_verified_once_then_remembered(issuer, monkeypatch):
    validator = make_validator(issuer)
    decoded = _counting_decodes(monkeypatch)
    alice, bob = issuer.token("alice", "alice-pw"), issuer.token("bob", "bob-pw")
    for _ in range(3):
        assert validator.validate(alice).username == "alice"
        assert validator.validate(bob).username == "bob"
    assert decoded == [alice, bob]
    tampered = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    refused(validator, tampered)  # not the remembered token: verified, and refused


def test_a_remembered_token_still_expires(issuer):
    token = issuer.token("alice", "alice-pw")
    now = [time.time()]  # after the token's iat: with no leeway, never "in the future"
    validator = make_validator(issuer, auth_leeway_s=0, clock=lambda: now[0])
    validator.validate(token)
    now[0] += 301
    assert "expired" in refused(validator, token).message


def test_a_remembered_token_is_refused_once_its_key_is_rotated_out(own_issuer, tmp_path):
    token = own_issuer.token("alice", "alice-pw")
    now = [time.time()]
    validator = make_validator(own_issuer, clock=lambda: now[0], auth_jwks_max_age_s=60,
                               auth_jwks_min_interval_s=0)
    validator.validate(token)
    from devstack.token_issuer.app import IssuerConfig, key_path, load_or_create_key
    new_key = load_or_create_key(key_path(tmp_path / "rotated"))
    own_issuer.reconfigure(IssuerConfig(**{**own_issuer.config.__dict__, "key": new_key}))
    validator.validate(token)  # the keys are not old yet: the token's key is still known
    now[0] += 61  # the keys are refetched: the old one is gone
    assert refused(validator, token).reason == "unknown_key"


def test_unreachable_issuer_is_503_not_401(issuer):
    closed = AuthSettings(auth_issuer="http://127.0.0.1:9/realms/auxip", auth_http_timeout_s=1)
    error = refused(TokenValidator(closed), issuer.token("alice", "alice-pw"), status=503)
    assert error.code == "temporarily_unavailable"


def test_discovery_document_of_another_issuer_is_not_trusted(issuer):
    # Same server, but we expect an issuer string the realm does not claim.
    skewed = make_validator(issuer, auth_issuer=issuer.issuer + "/")
    refused(skewed, issuer.token("alice", "alice-pw"), status=503)


def test_jwks_with_symmetric_and_broken_keys_uses_only_the_good_ones(issuer, monkeypatch):
    good = httpx.get(f"{issuer.issuer}/protocol/openid-connect/certs").json()["keys"][0]
    jwks = {"keys": [{"kty": "oct", "kid": issuer.kid, "k": b64url(b"secret")},
                     {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                     {**good, "use": "enc", "kid": "for-encryption"},
                     "not a key", good]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks)

    validator = make_validator(issuer, http=httpx.Client(transport=httpx.MockTransport(handler)),
                               auth_jwks_url="http://jwks.invalid/certs")
    validator.validate(issuer.token("alice", "alice-pw"))
    refused(validator, issuer.sign(claims_for(issuer), kid="for-encryption"))


def test_es256_issuers_are_supported(issuer):
    key = ec.generate_private_key(ec.SECP256R1())
    from jwt.algorithms import ECAlgorithm
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "ec-1", "use": "sig"}
    http = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json={"keys": [jwk]})))
    validator = make_validator(issuer, http=http, auth_jwks_url="http://jwks.invalid/certs")
    assert validator.validate(issuer.sign(claims_for(issuer), key=key, kid="ec-1",
                                          alg="ES256")).username == "carol"
    # ES384 allowed, but the key named is P-256: the curve must fit the algorithm.
    wider = make_validator(issuer, http=http, auth_jwks_url="http://jwks.invalid/certs",
                           auth_algorithms="RS256,ES256,ES384")
    p384 = ec.generate_private_key(ec.SECP384R1())
    refused(wider, issuer.sign(claims_for(issuer), key=p384, kid="ec-1", alg="ES384"))


@pytest.mark.parametrize("algorithms", ["none", "HS256", "RS256,HS512", "", "RS256, none"])
def test_settings_refuse_unsafe_algorithms(algorithms):
    with pytest.raises(ValidationError):
        AuthSettings(auth_algorithms=algorithms)


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("AUXIP_AUTH_ISSUER", "https://iam.example/realms/s1")
    monkeypatch.setenv("AUXIP_AUTH_AUDIENCE", "auxip-prod")
    monkeypatch.setenv("AUXIP_AUTH_ALGORITHMS", "RS256, PS256")
    monkeypatch.setenv("AUXIP_ANONYMOUS_CATALOGUE", "true")
    s = AuthSettings()
    assert (s.issuer, s.auth_audience, s.algorithms, s.anonymous_catalogue) == (
        "https://iam.example/realms/s1", "auxip-prod", ("RS256", "PS256"), True)
    monkeypatch.delenv("AUXIP_AUTH_ISSUER")
    monkeypatch.setenv("AUXIP_PORT_BASE", "9000")  # the local stack's: no issuer guessed from it
    assert AuthSettings().issuer is None


def test_without_an_issuer_bearer_tokens_are_refused_and_basic_still_works(monkeypatch):
    monkeypatch.delenv("AUXIP_AUTH_ISSUER", raising=False)
    spec = "ann:" + hash_password("ann-pw", iterations=1000) + ":reader"
    auth = Authenticator.from_settings(AuthSettings(auth_basic_users=spec))
    assert auth.validator is None
    for headers, query in (({"Authorization": "Bearer abc.def.ghi"}, {}),
                           ({}, {"token": "abc.def.ghi"})):
        with pytest.raises(AuthError) as caught:
            auth.authenticate(headers, query, allow_query_token=True)
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")
        assert "no OIDC issuer" in caught.value.message
    basic = base64.b64encode(b"ann:ann-pw").decode()
    assert auth.authenticate({"Authorization": f"Basic {basic}"}, {}).username == "ann"


@pytest.mark.parametrize("configured", [
    {"auth_issuer": "https://iam.example/realms/s1"},
    {"auth_basic_users": "ann:x:reader"},
    {"anonymous_catalogue": True},
])
def test_prip_starts_with_any_one_way_in(monkeypatch, configured):
    monkeypatch.delenv("AUXIP_AUTH_ISSUER", raising=False)
    AuthSettings(**configured).require_some_access()


def test_prip_refuses_to_start_when_nobody_could_get_in(monkeypatch):
    for name in ("AUXIP_AUTH_ISSUER", "AUXIP_AUTH_BASIC_USERS", "AUXIP_ANONYMOUS_CATALOGUE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="AUXIP_AUTH_ISSUER"):
        AuthSettings().require_some_access()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=+/"),
    st.lists(st.text(alphabet="eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9-_", max_size=60),
             min_size=3, max_size=3).map(".".join),
    st.binary().map(lambda b: b64url(b) + ".e30." + b64url(b)),
))
def test_random_strings_always_give_401(validator, token):
    with pytest.raises(AuthError) as caught:
        validator.validate(token)
    assert caught.value.status == 401


# --- requests: headers, query, challenges, roles -----------------------------------------

@pytest.fixture(scope="module")
def basic_users() -> BasicUsers:
    return BasicUsers({
        **parse_basic_users(f"legacy:{hash_password('legacy-pw', iterations=1000)}:reader"),
        **parse_basic_users("local:plain$lo:cal-pw:operator"),
    })


def call(validator, basic_users, headers=None, query=None, allow_query_token=False):
    return authenticate(headers or {}, query or {}, validator=validator,
                        basic_users=basic_users, allow_query_token=allow_query_token)


def test_bearer_header_in_any_casing(issuer, validator, basic_users):
    token = issuer.token("bob", "bob-pw")
    for name, scheme in (("Authorization", "Bearer"), ("authorization", "bearer"),
                         ("AUTHORIZATION", "BEARER")):
        principal = call(validator, basic_users, {name: f"{scheme}  {token} "})
        assert principal is not None and principal.username == "bob"


def test_no_credentials_is_anonymous_and_require_says_401(validator, basic_users):
    assert call(validator, basic_users) is None
    with pytest.raises(AuthError) as caught:
        require(None, READER)
    assert caught.value.status == 401
    assert challenge(caught.value) == {"WWW-Authenticate": 'Bearer realm="auxip"'}


def test_bad_token_401_carries_an_rfc6750_challenge(validator, basic_users):
    with pytest.raises(AuthError) as caught:
        call(validator, basic_users, {"Authorization": "Bearer not-a-token"})
    header = challenge(caught.value)["WWW-Authenticate"]
    assert header.startswith('Bearer realm="auxip", error="invalid_token", error_description="')
    for bad in ("Bearer", "Bearer   ", "Token abc", "Negotiate abc"):
        with pytest.raises(AuthError) as caught:
            call(validator, basic_users, {"Authorization": bad})
        assert caught.value.status == 401
        assert 'error="invalid_request"' in challenge(caught.value)["WWW-Authenticate"]


def test_challenge_description_is_quotable():
    error = AuthError(401, "invalid_token", 'bad "quoted" \\ thing \u00e9\n')
    header = challenge(error)["WWW-Authenticate"]
    assert header == ('Bearer realm="auxip", error="invalid_token", '
                      'error_description="bad quoted  thing "')


def test_require_role_gives_403_without_it(issuer, validator, basic_users):
    token = issuer.token("alice", "alice-pw")
    alice = call(validator, basic_users, {"Authorization": f"Bearer {token}"})
    assert require(alice, READER) is alice
    with pytest.raises(AuthError) as caught:
        require(alice, SUBSCRIBER)
    assert caught.value.status == 403 and caught.value.code == "insufficient_scope"
    ops = Principal("s", "ops", frozenset({OPERATOR}))
    assert require(ops, SUBSCRIBER) is ops


def test_query_token_only_where_allowed(issuer, validator, basic_users):
    token = issuer.token("alice", "alice-pw")
    allowed = call(validator, basic_users, query={"token": token}, allow_query_token=True)
    assert allowed is not None and allowed.username == "alice"
    assert call(validator, basic_users, query={"token": token}) is None
    with pytest.raises(AuthError):
        call(validator, basic_users, query={"token": "garbage"}, allow_query_token=True)
    # The header wins over the query.
    bob = issuer.token("bob", "bob-pw")
    both = call(validator, basic_users, {"Authorization": f"Bearer {bob}"}, {"token": token},
                allow_query_token=True)
    assert both is not None and both.username == "bob"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_good_and_bad(validator, basic_users):
    legacy = call(validator, basic_users, basic("legacy", "legacy-pw"))
    assert legacy == Principal("basic:legacy", "legacy", frozenset({READER}))
    local = call(validator, basic_users, basic("local", "lo:cal-pw"))
    assert local is not None and local.can(SUBSCRIBER)
    for user, password in (("legacy", "wrong"), ("nobody", "legacy-pw"), ("legacy", ""),
                           ("local", "lo")):
        with pytest.raises(AuthError) as caught:
            call(validator, basic_users, basic(user, password))
        assert caught.value.status == 401
        assert challenge(caught.value, basic=True)["WWW-Authenticate"] == (
            'Bearer realm="auxip", Basic realm="auxip", charset="UTF-8"')
    # Remembered successes do not make wrong passwords pass.
    call(validator, basic_users, basic("legacy", "legacy-pw"))
    with pytest.raises(AuthError):
        call(validator, basic_users, basic("legacy", "legacy-pw-"))


def test_basic_auth_malformed_or_disabled(validator, basic_users):
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic"):
        with pytest.raises(AuthError) as caught:
            call(validator, basic_users, {"Authorization": value})
        assert caught.value.status == 401
    with pytest.raises(AuthError) as caught:
        call(validator, BasicUsers({}), basic("legacy", "legacy-pw"))
    assert caught.value.status == 401


def test_basic_users_spec_errors_do_not_echo_secrets():
    for spec in ("alice:plain$s3cret", "alice:md5$s3cret:reader", "alice:pbkdf2_sha256$s3cret:r",
                 ":plain$s3cret:reader", "a:plain$s3cret:r;a:plain$s3cret:r"):
        with pytest.raises(ValueError) as caught:
            parse_basic_users(spec)
        assert "s3cret" not in str(caught.value)
    users = parse_basic_users(" ; a:plain$x:reader, subscriber ;b:plain$y: ;")
    assert users["a"].roles == {"reader", "subscriber"} and users["b"].roles == frozenset()
    assert "x" not in repr(users["a"]).replace("subscriber", "")


def test_authenticator_from_environment(issuer, monkeypatch):
    monkeypatch.setenv("AUXIP_AUTH_ISSUER", issuer.issuer)
    monkeypatch.setenv("AUXIP_AUTH_BASIC_USERS", "legacy:plain$pw:reader")
    gate = Authenticator.from_settings(AuthSettings())
    assert gate.anonymous_catalogue is False
    assert gate.authenticate(basic("legacy", "pw"), {}).username == "legacy"
    token = issuer.token("alice", "alice-pw")
    assert gate.authenticate({}, {"token": token}) is None
    assert gate.authenticate({}, {"token": token}, allow_query_token=True).username == "alice"
    assert "Basic" in gate.challenge(AuthError(401, "missing_credentials", "x"))["WWW-Authenticate"]


def test_tokens_never_reach_the_logs(issuer, validator, basic_users, caplog):
    caplog.set_level(logging.DEBUG)
    good = issuer.token("alice", "alice-pw")
    header, payload, signature = segments(good)
    bad = f"{header}.{payload}.{signature[:-4]}AAAA"
    fresh = make_validator(issuer)
    fresh.validate(good)
    for token in (bad, good[:-1]):
        with pytest.raises(AuthError) as caught:
            fresh.validate(token)
        assert signature[:20] not in str(caught.value)
    text = caplog.text
    assert signature[:20] not in text and payload[:40] not in text


def test_audiences_are_a_comma_list(issuer):
    settings = AuthSettings(auth_issuer=issuer.issuer, auth_audience=" auxip, processing ,auxip")
    assert settings.audiences == ("auxip", "processing")
    with pytest.raises(ValidationError):
        AuthSettings(auth_audience=" , ")
    both = make_validator(issuer, auth_audience="other,auxip")
    for aud, azp in (("auxip", "x"), (["a", "other"], "x"), (None, "other")):
        both.validate(issuer.sign(claims_for(issuer, aud=aud, azp=azp)))
    error = refused(both, issuer.sign(claims_for(issuer, aud=["a", "b"], azp=["other"])))
    assert "audience" in error.message
    # Roles of each accepted audience's resource_access count, no other client's.
    token = issuer.sign(claims_for(issuer, realm_access={"roles": []}, resource_access={
        "other": {"roles": ["subscriber"]}, "auxip": {"roles": ["reader"]},
        "unrelated": {"roles": ["operator"]}}))
    assert both.validate(token).roles == {"reader", "subscriber"}
