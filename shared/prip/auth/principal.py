"""Who is calling, once authenticated: what the OData handlers decide on."""

from __future__ import annotations

from dataclasses import dataclass

READER = "reader"  # query the catalogue, download products
SUBSCRIBER = "subscriber"  # manage the subscriptions it owns
OPERATOR = "operator"  # everything, plus operations

KNOWN_ROLES: frozenset[str] = frozenset({READER, SUBSCRIBER, OPERATOR})


@dataclass(frozen=True)
class Principal:
    subject: str  # stable id (the token's `sub`): what owns subscriptions
    username: str  # for people and logs (`preferred_username`), never used for decisions
    roles: frozenset[str]

    def can(self, role: str) -> bool:
        # Operators are not given every role in the IdP; the implication lives here, once.
        return role in self.roles or OPERATOR in self.roles
