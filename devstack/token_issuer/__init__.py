"""The local stack's OIDC token issuer, a stand-in for a Keycloak realm (not for
production): `python -m devstack.token_issuer`. app.py serves it and says how it is
configured; realm.py says where it answers."""
