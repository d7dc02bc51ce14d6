"""Forged and misused bearer tokens, beyond those tests/prip/test_access.py sends (expired,
other issuer, tampered payload, `alg: none`, wrong audience, refresh token, garbage):
algorithm confusion, keys the token brings along or points to, a foreign key under the
realm's `kid`, spliced signatures, time claims out of range, missing claims, roles granted
to another client. Each is signed with the realm's own key wherever that makes the forgery
stronger, so that only the check under test can refuse it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.token_issuer.keys import key_path, load_or_create_key, public_jwk


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: dict) -> str:
    return _b64(json.dumps(value).encode())


class Forger:
    """Tokens for the realm whose issuer is `issuer` and whose key lies under `state_dir`."""

    def __init__(self, issuer: str, state_dir: Path, canary_url: str) -> None:
        self.issuer = issuer
        self.key = load_or_create_key(key_path(state_dir))
        self.kid = public_jwk(self.key)["kid"]
        self.attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.canary_url = canary_url

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "7d0c3a52-0000-4000-8000-00000000f00d",
                  "aud": "auxip", "azp": "auxip", "typ": "Bearer", "iat": now,
                  "exp": now + 300, "preferred_username": "mallory",
                  "realm_access": {"roles": ["reader", "subscriber", "operator"]}}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def signed(self, claims: dict[str, Any], key: Any = None, **headers: Any) -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256",
                          headers={"kid": self.kid, **headers})

    def _hs256_with_public_key(self) -> str:
        # The classic key confusion: the verifier's RSA public key used as an HMAC secret.
        pem = self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        head = _json({"alg": "HS256", "typ": "JWT", "kid": self.kid})
        body = _json(self.claims())
        signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"

    def _none(self, alg: str, signature: str = "") -> str:
        return f"{_json({'alg': alg, 'typ': 'JWT'})}.{_json(self.claims())}.{signature}"

    def _spliced(self) -> str:
        # A genuine signature (of a harmless token) under an escalated payload.
        genuine = self.signed(self.claims(realm_access={"roles": []}))
        head, _, signature = genuine.split(".")
        return f"{head}.{_json(self.claims())}.{signature}"

    def _header_swapped(self) -> str:
        # The realm's valid RS256 token, its header now claiming HS256.
        _, body, signature = self.signed(self.claims()).split(".")
        return f"{_json({'alg': 'HS256', 'typ': 'JWT', 'kid': self.kid})}.{body}.{signature}"

    def kinds(self) -> dict[str, Callable[[], str]]:
        now = int(time.time())
        attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.attacker.public_key()))
        return {
            "alg None (capitalised)": lambda: self._none("None"),
            "alg NONE with a signature": lambda: self._none("NONE", _b64(b"x" * 32)),
            "HS256 keyed with the realm's public key": self._hs256_with_public_key,
            "RS256 header over an HS256 claim": self._header_swapped,
            "attacker key, embedded jwk": lambda: self.signed(
                self.claims(), self.attacker, jwk=attacker_jwk, kid="attacker"),
            "attacker key, jku to fetch": lambda: self.signed(
                self.claims(), self.attacker, jku=f"{self.canary_url}/jwks.json", kid="x1"),
            "attacker key, x5u to fetch": lambda: self.signed(
                self.claims(), self.attacker, x5u=f"{self.canary_url}/cert.pem", kid="x2"),
            "attacker key under the realm's kid": lambda: self.signed(self.claims(),
                                                                      self.attacker),
            "unknown kid": lambda: self.signed(self.claims(), kid="no-such-key"),
            "kid with a path": lambda: self.signed(self.claims(), kid="../../../etc/passwd"),
            "spliced signature": self._spliced,
            "signature stripped": lambda: self.signed(self.claims()).rsplit(".", 1)[0] + ".",
            "crit header": lambda: self.signed(self.claims(), crit=["exp"]),
            "not valid before an hour from now": lambda: self.signed(self.claims(nbf=now + 3600)),
            "issued an hour from now": lambda: self.signed(self.claims(iat=now + 3600,
                                                                       exp=now + 7200)),
            "no exp": lambda: self.signed(self.claims(exp=None)),
            "no sub": lambda: self.signed(self.claims(sub=None)),
            "ID token": lambda: self.signed(self.claims(typ="ID")),
            "issuer with a trailing slash": lambda: self.signed(self.claims(
                iss=self.issuer + "/")),
            "audience list without us": lambda: self.signed(self.claims(
                aud=["account", "broker"], azp="another-client")),
        }

    def roles_of_another_client(self) -> str:
        """Well signed, for us, but the roles are another client's: authenticated, no role."""
        return self.signed(self.claims(realm_access={"roles": []}, resource_access={
            "another-client": {"roles": ["reader", "subscriber", "operator"]}}))
