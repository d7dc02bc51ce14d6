"""Subscription endpoint passwords at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256)
under AUXIP_SECRET_KEYS, so a dump of the catalogue does not hand out the credentials
subscribers gave for their NotificationEndpoint.

AUXIP_SECRET_KEYS is a comma-separated list of Fernet keys (`auxip secret-key` prints a
new one): the first seals, every one unseals, so a key is rotated by putting the new one
first, running `auxip subscriptions reseal`, then dropping the old one. prip (which seals)
and notify (which unseals) need the same list.

Without keys, prip refuses a password (fail closed) instead of storing it in clear. A
stored value without the `fernet:` prefix is clear text from before sealing: it still
reads, and `reseal` seals it.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

PREFIX = "fernet:"


class SecretsUnavailable(RuntimeError):
    """No key, or no key that opens this value: the operator must configure them."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def seal(password: str, keys: SecretStr | None) -> str:
    return PREFIX + _box(keys).encrypt(password.encode()).decode()


def unseal(stored: str, keys: SecretStr | None) -> str:
    if not is_sealed(stored):
        return stored
    try:
        return _box(keys).decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretsUnavailable("no key of AUXIP_SECRET_KEYS opens this password"
                                 " (sealed under a key since removed?)") from None


def reseal(stored: str, keys: SecretStr | None) -> str:
    """The value sealed under the first key (clear text sealed, old keys' tokens rotated)."""
    if not is_sealed(stored):
        return seal(stored, keys)
    try:
        return PREFIX + _box(keys).rotate(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretsUnavailable("no key of AUXIP_SECRET_KEYS opens this password") from None


def _box(keys: SecretStr | None) -> MultiFernet:
    listed = [k.strip() for k in (keys.get_secret_value() if keys else "").split(",")
              if k.strip()]
    if not listed:
        raise SecretsUnavailable("AUXIP_SECRET_KEYS is not set: endpoint passwords cannot be"
                                 " sealed or opened")
    try:
        return MultiFernet([Fernet(k) for k in listed])
    except ValueError as error:  # not 32 url-safe base64-encoded bytes
        raise SecretsUnavailable(f"AUXIP_SECRET_KEYS holds an invalid key: {error}") from None
