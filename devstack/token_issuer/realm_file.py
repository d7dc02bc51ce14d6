"""The local realm's configuration: a subset of Keycloak's realm export (`kc.sh export`),
so that what is configured here reads, and imports, as a Keycloak realm does.

Understood (anything else of a Keycloak export is ignored, except what would change who
gets a token, which is refused at start rather than silently not applied):

    {"realm": "auxip", "accessTokenLifespan": 300, "ssoSessionIdleTimeout": 1800,
     "roles": {"realm": [{"name": "reader"}], "client": {"<clientId>": [{"name": "..."}]}},
     "clients": [{"clientId": "...", "enabled": true, "publicClient": false, "secret": "...",
                  "standardFlowEnabled": true, "directAccessGrantsEnabled": false,
                  "serviceAccountsEnabled": false, "redirectUris": ["http://127.0.0.1:*"],
                  "attributes": {"pkce.code.challenge.method": "S256"},
                  "protocolMappers": [{"name": "...", "protocol": "openid-connect",
                      "protocolMapper": "oidc-audience-mapper",
                      "config": {"included.client.audience": "auxip",
                                 "included.custom.audience": "...",
                                 "access.token.claim": "true"}}]}],
     "users": [{"username": "...", "enabled": true, "email": "...", "firstName": "...",
                "lastName": "...", "credentials": [{"type": "password", "value": "..."}],
                "realmRoles": ["reader"], "clientRoles": {"<clientId>": ["..."]}},
               {"username": "service-account-<clientId>", "serviceAccountClientId": "...",
                "realmRoles": ["operator"]}]}

Keycloak's meaning is kept: a client's audience mappers put its audiences in `aud`; a
client role a user holds puts that client in `aud` too (Keycloak's audience resolve) and in
`resource_access`; a confidential client's service account is the user whose
`serviceAccountClientId` names it. Passwords are plain `value`s (Keycloak imports those
too; this realm is for a developer's machine only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devstack.token_issuer.realm import LOCAL_REALM

DEMO_REALM = Path(__file__).with_name("demo-realm.json")
AUDIENCE_MAPPER = "oidc-audience-mapper"
SERVICE_ACCOUNT_PREFIX = "service-account-"
# Keycloak gives every user this composite, which holds these two.
DEFAULT_ROLES = (f"default-roles-{LOCAL_REALM}", "offline_access", "uma_authorization")


class RealmError(ValueError):
    """A realm file that cannot be served as written."""


class _Keycloak(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Mapper(_Keycloak):
    name: str = ""
    protocol: str = "openid-connect"
    protocolMapper: str
    config: dict[str, str] = Field(default_factory=dict)

    def audiences(self) -> list[str]:
        if self.config.get("access.token.claim", "true") != "true":
            return []
        return [a for a in (self.config.get("included.client.audience"),
                            self.config.get("included.custom.audience")) if a]


class Client(_Keycloak):
    clientId: str = Field(min_length=1)
    enabled: bool = True
    publicClient: bool = False
    secret: str | None = Field(default=None, repr=False)
    standardFlowEnabled: bool = True
    directAccessGrantsEnabled: bool = False
    serviceAccountsEnabled: bool = False
    implicitFlowEnabled: bool = False
    redirectUris: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    protocolMappers: list[Mapper] = Field(default_factory=list)

    @property
    def audiences(self) -> list[str]:
        """What its audience mappers put in `aud`, in their order, once each."""
        return list(dict.fromkeys(a for m in self.protocolMappers for a in m.audiences()))

    @property
    def pkce_required(self) -> bool:
        # Public clients cannot keep a secret: a code alone must never be enough for them.
        return self.publicClient or self.attributes.get("pkce.code.challenge.method") == "S256"

    def allows_redirect(self, uri: str) -> bool:
        """Keycloak's rule: an exact match, or a registered URI ending in `*` as a prefix."""
        for registered in self.redirectUris:
            if registered.endswith("*"):
                if uri.startswith(registered[:-1]) and "#" not in uri:
                    return True
            elif uri == registered:
                return True
        return False


class Credential(_Keycloak):
    type: str
    value: str | None = Field(default=None, repr=False)


class User(_Keycloak):
    username: str = Field(min_length=1)
    enabled: bool = True
    email: str | None = None
    emailVerified: bool = False
    firstName: str | None = None
    lastName: str | None = None
    credentials: list[Credential] = Field(default_factory=list)
    realmRoles: list[str] = Field(default_factory=list)
    clientRoles: dict[str, list[str]] = Field(default_factory=dict)
    serviceAccountClientId: str | None = None

    @property
    def password(self) -> str | None:
        return next((c.value for c in self.credentials if c.type == "password" and c.value),
                    None)


class Role(_Keycloak):
    name: str = Field(min_length=1)


class Roles(_Keycloak):
    realm: list[Role] = Field(default_factory=list)
    client: dict[str, list[Role]] = Field(default_factory=dict)


class Realm(_Keycloak):
    realm: Literal["auxip"] = LOCAL_REALM
    enabled: bool = True
    accessTokenLifespan: int = Field(default=300, gt=0)
    ssoSessionIdleTimeout: int = Field(default=1800, gt=0)
    roles: Roles = Field(default_factory=Roles)
    clients: list[Client] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Realm:
        _unique("client", (c.clientId for c in self.clients))
        _unique("user", (u.username.lower() for u in self.users))
        clients = {c.clientId: c for c in self.clients}
        for client in self.clients:
            if not client.publicClient and not client.secret:
                raise ValueError(f"client {client.clientId} is confidential but has no secret")
            if client.implicitFlowEnabled:
                raise ValueError(f"client {client.clientId}: the implicit flow is not served")
            for mapper in client.protocolMappers:
                if mapper.protocolMapper != AUDIENCE_MAPPER:
                    raise ValueError(f"client {client.clientId}: protocol mapper "
                                     f"{mapper.protocolMapper!r} is not served here (only "
                                     f"{AUDIENCE_MAPPER})")
        realm_roles = {r.name for r in self.roles.realm} | set(DEFAULT_ROLES)
        client_roles = {c: {r.name for r in rs} for c, rs in self.roles.client.items()}
        for user in self.users:
            unknown = set(user.realmRoles) - realm_roles
            for client_id, names in user.clientRoles.items():
                unknown |= {f"{client_id}/{n}" for n in set(names) - client_roles.get(client_id,
                                                                                        set())}
            if unknown:
                raise ValueError(f"user {user.username}: undefined roles {sorted(unknown)}")
            owner = user.serviceAccountClientId
            if owner is not None and (owner not in clients or clients[owner].publicClient):
                raise ValueError(f"user {user.username} is the service account of "
                                 f"{owner!r}, which is not a confidential client here")
        return self

    def client(self, client_id: str) -> Client | None:
        found = next((c for c in self.clients if c.clientId == client_id), None)
        return found if found is not None and found.enabled else None

    def person(self, username: str) -> User | None:
        """An enabled user who logs in (Keycloak: usernames are case-insensitive)."""
        wanted = username.lower()
        found = next((u for u in self.users
                      if u.username.lower() == wanted and u.serviceAccountClientId is None), None)
        return found if found is not None and found.enabled else None

    def service_account(self, client_id: str) -> User:
        """The client's service-account user (Keycloak makes one, without roles, if the
        export has none)."""
        found = next((u for u in self.users if u.serviceAccountClientId == client_id), None)
        return found or User(username=SERVICE_ACCOUNT_PREFIX + client_id,
                             serviceAccountClientId=client_id)

    def with_people(self, people: Iterable[User]) -> Realm:
        """This realm with its people replaced (its service accounts kept); roles they name
        become realm roles."""
        people = list(people)
        defined = {r.name for r in self.roles.realm}
        extra = [Role(name=n) for n in sorted({r for u in people for r in u.realmRoles})
                 if n not in defined]
        roles = self.roles.model_copy(update={"realm": [*self.roles.realm, *extra]})
        kept = [u for u in self.users if u.serviceAccountClientId is not None]
        return Realm.model_validate({**self.model_dump(), "roles": roles.model_dump(),
                                     "users": [u.model_dump() for u in [*kept, *people]]})


def load_realm(path: Path) -> Realm:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RealmError(f"cannot read the realm file {path}: {error.strerror}") from None
    except ValueError as error:
        raise RealmError(f"{path} is not JSON: {error}") from None
    try:
        return Realm.model_validate(document)
    except ValidationError as error:
        # Only where and what: the input values may be passwords.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'realm'}: {e['msg']}"
                             for e in error.errors(include_input=False))
        raise RealmError(f"{path}: {problems}") from None


def people_from_spec(spec: str, variable: str = "AUXIP_LOCAL_USERS") -> list[User]:
    """`name:password:role,role;...` (the password may hold ':', not ';')."""
    people: list[User] = []
    for number, entry in enumerate(filter(None, (e.strip() for e in spec.split(";"))), 1):
        name, sep1, rest = entry.partition(":")
        password, sep2, roles = rest.rpartition(":")
        if not (sep1 and sep2 and name and password):
            # By position: the entry holds a password.
            raise RealmError(f"{variable} entry {number} is not name:password:roles")
        people.append(User(username=name,
                           credentials=[Credential(type="password", value=password)],
                           realmRoles=sorted({r.strip() for r in roles.split(",") if r.strip()})))
    return people


def _unique(what: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name} appears twice")
        seen.add(name)
