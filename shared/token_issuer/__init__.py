"""The local stack's OIDC token issuer, a stand-in for a Keycloak realm (not for
production): `python -m shared.token_issuer`. See app.py for its configuration."""

from shared.token_issuer.app import (
    DEMO_USERS,
    IssuerConfig,
    IssuerSettings,
    create_app,
    key_path,
    load_or_create_key,
    public_jwk,
)

__all__ = ["DEMO_USERS", "IssuerConfig", "IssuerSettings", "create_app", "key_path",
           "load_or_create_key", "public_jwk"]
