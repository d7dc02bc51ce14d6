"""The local stack's OIDC provider, a stand-in for a Keycloak realm (not for production):
`python -m devstack.token_issuer`. app.py serves it; realm_file.py reads its realm (a
Keycloak realm export); minting.py shapes the tokens; authorization.py holds the code flow;
keys.py the signing key; realm.py says where it answers."""
