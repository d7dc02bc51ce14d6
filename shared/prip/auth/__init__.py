"""Authentication and roles for the OData API: Keycloak realm tokens (OIDC bearer),
legacy HTTP Basic, and the role checks. See tokens.py for what a token must satisfy."""

from shared.prip.auth.basic import BasicUser, BasicUsers, hash_password
from shared.prip.auth.principal import OPERATOR, READER, SUBSCRIBER, Principal
from shared.prip.auth.requests import Authenticator, authenticate, challenge, require
from shared.prip.auth.settings import AuthSettings
from shared.prip.auth.tokens import AuthError, TokenValidator

__all__ = [
    "OPERATOR", "READER", "SUBSCRIBER", "AuthError", "AuthSettings", "Authenticator",
    "BasicUser", "BasicUsers", "Principal", "TokenValidator", "authenticate", "challenge",
    "hash_password", "require",
]
