"""Endpoint passwords sealed at rest (shared/adapters/endpoint_secrets.py): round trip, rotation,
clear text from before sealing, and the refusals when keys are missing or wrong."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from shared.adapters import endpoint_secrets as secrets

OLD = secrets.new_key()
NEW = secrets.new_key()


def keys(*listed: str) -> SecretStr:
    return SecretStr(", ".join(listed))


def test_a_sealed_password_opens_with_its_key_only() -> None:
    sealed = secrets.seal("pässwörd:with,commas", keys(OLD))
    assert sealed.startswith(secrets.PREFIX) and "pässwörd" not in sealed
    assert secrets.seal("pässwörd:with,commas", keys(OLD)) != sealed  # random IV each time
    assert secrets.unseal(sealed, keys(OLD)) == "pässwörd:with,commas"
    with pytest.raises(secrets.SecretsUnavailable, match="no key"):
        secrets.unseal(sealed, keys(NEW))


def test_rotation_new_key_first_then_reseal_then_old_key_dropped() -> None:
    sealed = secrets.seal("s3cret", keys(OLD))
    rotating = keys(NEW, OLD)
    assert secrets.unseal(sealed, rotating) == "s3cret"  # both open during the rotation
    resealed = secrets.reseal(sealed, rotating)
    assert secrets.unseal(resealed, keys(NEW)) == "s3cret"  # the old key can go
    with pytest.raises(secrets.SecretsUnavailable):
        secrets.unseal(resealed, keys(OLD))


def test_clear_text_from_before_sealing_reads_and_reseals() -> None:
    assert secrets.unseal("legacy-pw", None) == "legacy-pw"
    resealed = secrets.reseal("legacy-pw", keys(NEW))
    assert secrets.is_sealed(resealed) and secrets.unseal(resealed, keys(NEW)) == "legacy-pw"


@pytest.mark.parametrize("configured", [None, keys(""), keys(" , ")])
def test_no_key_refuses_to_seal_or_open(configured: SecretStr | None) -> None:
    with pytest.raises(secrets.SecretsUnavailable, match="AUXIP_SECRET_KEYS is not set"):
        secrets.seal("pw", configured)
    with pytest.raises(secrets.SecretsUnavailable):
        secrets.unseal(secrets.seal("pw", keys(OLD)), configured)


def test_an_invalid_key_is_named_as_such() -> None:
    with pytest.raises(secrets.SecretsUnavailable, match="invalid key"):
        secrets.seal("pw", keys("not-a-fernet-key"))
