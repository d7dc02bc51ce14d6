"""Legacy HTTP Basic users, for clients that cannot do OAuth2.

AUXIP_AUTH_BASIC_USERS="name:HASH:role,role;name:HASH:role"
  HASH is `pbkdf2_sha256$<iterations>$<salt, base64>$<digest, base64>`; print one with
  `python -m shared.prip.auth.basic` (reads the password from the terminal or stdin).
  `plain$<password>` is accepted too, meant for a local stack only.
  Names cannot hold ':' (RFC 7617); plain passwords cannot hold ';'.

A PBKDF2 check costs a noticeable fraction of a second on purpose; since legacy clients
send their password with every request, a successful check is remembered (as an HMAC under
a key that lives only in this process), so only failures and first uses pay it.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

PBKDF2 = "pbkdf2_sha256"
PLAIN = "plain"
DEFAULT_ITERATIONS = 600_000  # OWASP 2023 for PBKDF2-HMAC-SHA256


@dataclass(frozen=True)
class BasicUser:
    username: str
    password_hash: str = field(repr=False)
    roles: frozenset[str]


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS,
                  salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{PBKDF2}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    scheme, _, rest = encoded.partition("$")
    if scheme == PLAIN:
        return hmac.compare_digest(password.encode(), rest.encode())
    if scheme != PBKDF2:
        return False
    iterations, salt, expected = _pbkdf2_parts(rest)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def parse_basic_users(spec: str) -> dict[str, BasicUser]:
    users: dict[str, BasicUser] = {}
    for number, entry in enumerate(filter(None, (e.strip() for e in spec.split(";"))), 1):
        # Messages name the entry by position: the entry itself holds a secret.
        name, sep1, rest = entry.partition(":")
        password_hash, sep2, roles = rest.rpartition(":")
        if not (sep1 and sep2 and name and password_hash):
            raise ValueError(f"AUXIP_AUTH_BASIC_USERS entry {number} is not name:HASH:roles")
        scheme, _, hash_rest = password_hash.partition("$")
        if scheme == PBKDF2:
            try:
                _pbkdf2_parts(hash_rest)
            except ValueError:
                raise ValueError(
                    f"AUXIP_AUTH_BASIC_USERS entry {number} ({name}): malformed {PBKDF2} hash"
                ) from None
        elif scheme != PLAIN:
            raise ValueError(f"AUXIP_AUTH_BASIC_USERS entry {number} ({name}): hash must "
                             f"start with {PBKDF2}$ or {PLAIN}$")
        if name in users:
            raise ValueError(f"AUXIP_AUTH_BASIC_USERS: {name} appears twice")
        users[name] = BasicUser(name, password_hash, _roles(roles))
    return users


class BasicUsers:
    """The configured users and the check of a name and password against them."""

    def __init__(self, users: Mapping[str, BasicUser]):
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        # Unknown names pay for a hash as well, so response time does not tell which exist.
        iterations = max((_pbkdf2_parts(u.password_hash.partition("$")[2])[0]
                          for u in self._users.values()
                          if u.password_hash.startswith(PBKDF2 + "$")), default=0)
        self._decoy = hash_password("", iterations=iterations) if iterations else None

    @classmethod
    def from_spec(cls, spec: str) -> BasicUsers:
        return cls(parse_basic_users(spec))

    def __bool__(self) -> bool:
        return bool(self._users)

    def check(self, username: str, password: str) -> BasicUser | None:
        user = self._users.get(username)
        if user is None:
            if self._decoy:
                verify_password(password, self._decoy)
            return None
        mark = hmac.digest(self._key, password.encode(), "sha256")
        known = self._verified.get(username)
        if known is not None and hmac.compare_digest(known, mark):
            return user
        if not verify_password(password, user.password_hash):
            return None
        self._verified[username] = mark  # bounded: one entry per configured user
        return user


def _pbkdf2_parts(rest: str) -> tuple[int, bytes, bytes]:
    iterations, salt, digest = rest.split("$")  # ValueError when malformed
    count = int(iterations)
    if count < 1:
        raise ValueError("iterations")
    return count, _unb64(salt), _unb64(digest)


def _roles(text: str) -> frozenset[str]:
    return frozenset(r.strip() for r in text.split(",") if r.strip())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("base64") from exc


if __name__ == "__main__":
    secret = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    print(hash_password(secret.rstrip("\n")))
