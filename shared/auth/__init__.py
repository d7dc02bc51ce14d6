"""Authentication and roles for the OData API: Keycloak realm tokens (OIDC bearer),
legacy HTTP Basic, and the role checks. See tokens.py for what a token must satisfy."""

from shared.auth.basic import BasicUser, BasicUsers, hash_password
from shared.auth.principal import OPERATOR, READER, SUBSCRIBER, Principal
from shared.auth.requests import Authenticator, authenticate, challenge, require
from shared.auth.settings import AuthSettings, local_issuer, local_token_url
from shared.auth.tokens import AuthError, TokenValidator

__all__ = [
    "OPERATOR", "READER", "SUBSCRIBER", "AuthError", "AuthSettings", "Authenticator",
    "BasicUser", "BasicUsers", "Principal", "TokenValidator", "authenticate", "challenge",
    "hash_password", "local_issuer", "local_token_url", "require",
]
