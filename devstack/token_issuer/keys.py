"""The realm's signing key: made at the first start and kept in the state folder, so that
tokens survive a restart of the issuer; published as a JWK whose kid follows the key."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)


def key_path(state_dir: Path) -> Path:
    return state_dir / "token-issuer" / "key.pem"


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            try:
                os.link(scratch, path)  # atomic and never overwrites: two first starts agree
            except FileExistsError:
                pass
        finally:
            scratch.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by others; restricting it to its owner", path)
        path.chmod(0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    jwk: dict[str, str] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    # RFC 7638 thumbprint: the kid follows the key, so a new key.pem is a new kid.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"),
                           sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    return {"kid": kid.decode(), "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": jwk["n"], "e": jwk["e"]}
