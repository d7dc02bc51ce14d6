"""A real token issuer (devstack's) on a loopback port, served from a thread: for the
issuer's own tests and for the auth tests that need tokens from a realm."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from devstack.token_issuer.app import IssuerConfig, create_app
from devstack.token_issuer.keys import key_path, load_or_create_key, public_jwk
from devstack.token_issuer.realm_file import Realm, people_from_spec

DEMO_USERS = "alice:alice-pw:reader;bob:bob-pw:reader,subscriber;ops:ops-pw:operator"
SERVICE_CLIENTS = "auxip-notify:notify-secret:reader;auxip-ops:ops-secret:operator"


def audience_mapper(audience: str, *, custom: bool = False) -> dict[str, Any]:
    key = "included.custom.audience" if custom else "included.client.audience"
    return {"name": f"audience {audience}", "protocolMapper": "oidc-audience-mapper",
            "config": {key: audience, "access.token.claim": "true"}}


def realm_of(users: str = DEMO_USERS, clients: str = "", *, audience: str = "auxip",
             **realm: Any) -> Realm:
    """A realm as the tests need one: `users` (name:password:roles) for the password grant
    through the public client `audience`; `clients` (id:secret:roles) confidential, with a
    service account holding those roles; every client's tokens are for `audience`."""
    public = {"clientId": audience, "publicClient": True, "directAccessGrantsEnabled": True,
              "redirectUris": ["http://127.0.0.1:*"],
              "protocolMappers": [audience_mapper(audience)]}
    confidential, accounts = [], []
    for entry in filter(None, clients.split(";")):
        client_id, secret, roles = entry.split(":")
        confidential.append({"clientId": client_id, "secret": secret,
                             "serviceAccountsEnabled": True, "directAccessGrantsEnabled": True,
                             "standardFlowEnabled": False,
                             "protocolMappers": [audience_mapper(audience)]})
        accounts.append({"username": f"service-account-{client_id}",
                         "serviceAccountClientId": client_id,
                         "realmRoles": [r for r in roles.split(",") if r]})
    roles = sorted({r for a in accounts for r in a["realmRoles"]})
    base = Realm.model_validate({"roles": {"realm": [{"name": r} for r in roles]}, **realm,
                                 "clients": [public, *confidential], "users": accounts})
    return base.with_people(people_from_spec(users))


@dataclass
class RunningIssuer:
    server: BaseWSGIServer
    config: IssuerConfig

    @property
    def issuer(self) -> str:
        return self.config.issuer

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def kid(self) -> str:
        return public_jwk(self.config.key)["kid"]

    def reconfigure(self, config: IssuerConfig) -> None:
        self.config = config
        self.server.app = create_app(config)

    def password_grant(self, username: str, password: str, client_id: str = "auxip-cli",
                       **extra: str) -> httpx.Response:
        """What any OAuth2 client sends for the resource-owner password grant."""
        form = {"grant_type": "password", "username": username, "password": password,
                "client_id": client_id, **extra}
        return httpx.post(self.token_url, data=form, timeout=10)

    def token(self, username: str, password: str, **extra: str) -> str:
        response = self.password_grant(username, password, **extra)
        response.raise_for_status()
        return response.json()["access_token"]

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = "",
             alg: str = "RS256") -> str:
        """A token signed with the issuer's own key (or `key`), for claims the token
        endpoint would never issue. kid "" means the issuer's kid, None means no kid."""
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(claims, key if key is not None else self.config.key, algorithm=alg,
                          headers=headers)


def start_issuer(state_dir: Path, *, users: str = DEMO_USERS, clients: str = SERVICE_CLIENTS,
                 audience: str = "auxip", lifetime_s: int = 300,
                 realm: Realm | None = None, any_client: str | None = None) -> RunningIssuer:
    """The issuer of `realm` (unknown client ids borrow `any_client`, or are refused), or of
    realm_of(users, clients, audience=audience) (they borrow `audience`)."""
    # Bind first (port 0: a free port, no race), then build the app whose issuer URL
    # names that port.
    server = make_server("127.0.0.1", 0, Flask("placeholder"), threaded=True)
    config = IssuerConfig(
        issuer=f"http://127.0.0.1:{server.port}/realms/auxip",
        key=load_or_create_key(key_path(state_dir)),
        realm=realm or realm_of(users, clients, audience=audience),
        any_client=audience if realm is None else any_client,
        lifetime_s=lifetime_s,
    )
    server.app = create_app(config)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    return RunningIssuer(server, config)


def stop_issuer(running: RunningIssuer) -> None:
    running.server.shutdown()
    running.server.server_close()
