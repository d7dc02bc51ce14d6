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

from devstack.token_issuer.app import (
    DEMO_USERS,
    IssuerConfig,
    create_app,
    key_path,
    load_or_create_key,
    parse_accounts,
    public_jwk,
)

SERVICE_CLIENTS = "auxip-notify:notify-secret:reader;auxip-ops:ops-secret:operator"


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
                 audience: str = "auxip", lifetime_s: int = 300) -> RunningIssuer:
    # Bind first (port 0: a free port, no race), then build the app whose issuer URL
    # names that port.
    server = make_server("127.0.0.1", 0, Flask("placeholder"), threaded=True)
    config = IssuerConfig(
        issuer=f"http://127.0.0.1:{server.port}/realms/auxip",
        key=load_or_create_key(key_path(state_dir)),
        users=parse_accounts(users, "AUXIP_LOCAL_USERS"),
        clients=parse_accounts(clients, "AUXIP_LOCAL_CLIENTS"),
        audience=audience, lifetime_s=lifetime_s,
    )
    server.app = create_app(config)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    return RunningIssuer(server, config)


def stop_issuer(running: RunningIssuer) -> None:
    running.server.shutdown()
    running.server.server_close()
