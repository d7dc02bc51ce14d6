"""The prip and notify functions served over real HTTP on loopback, against the test stack
(PostgreSQL, RGW), with a real token issuer; tokens come from real password grants.

The functions run in this process (werkzeug threaded servers around
`functions_framework.create_app`), configured through the environment as in production:
the AUXIP_* variables are set before their runtime is built, and the cached runtime and
service are dropped at the end.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import functions_framework
import httpx
import jwt
import psycopg
import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from devstack.token_issuer.app import IssuerConfig, create_app
from devstack.token_issuer.keys import key_path, load_or_create_key, public_jwk
from shared.adapters import endpoint_policy, runtime
from shared.adapters.settings import Settings
from shared.prip import service as prip_service
from tests.devstack.issuer import realm_of
from tests.prip import catalogue

REPO = Path(__file__).resolve().parents[2]
# A line per request of the in-process servers drowns the report of a failing test.
logging.getLogger("werkzeug").setLevel(logging.WARNING)
USERS = ("alice:alice-pw:reader;bob:bob-pw:reader,subscriber;"
         "carol:carol-pw:reader,subscriber;ops:ops-pw:operator;sam:sam-pw:subscriber")
MAX_PARALLEL = 3
TEST_ENV = {
    "AUXIP_MAX_PARALLEL_DOWNLOADS": str(MAX_PARALLEL),
    "AUXIP_NOTIFY_ATTEMPTS": "4",
    "AUXIP_NOTIFY_BACKOFF_S": "0.02",
    "AUXIP_NOTIFY_TIMEOUT_S": "3",
    # The tests' receivers listen on loopback, which notify refuses by default; 127.0.0.1
    # only, so that the rest of 127/8 still shows the deny list at work.
    "AUXIP_NOTIFY_ALLOWED_NETWORKS": "127.0.0.1/32",
}


def serve(app: Any) -> BaseWSGIServer:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def stop(server: BaseWSGIServer) -> None:
    server.shutdown()
    server.server_close()


@dataclass
class Issuer:
    server: BaseWSGIServer
    config: IssuerConfig
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def token(self, user: str) -> str:
        """A real password grant, as any OAuth2 client makes it (cached per user)."""
        if user not in self.tokens:
            answer = httpx.post(f"{self.issuer}/protocol/openid-connect/token", data={
                "grant_type": "password", "username": user, "password": f"{user}-pw",
                "client_id": "auxip-tests"}, timeout=10)
            answer.raise_for_status()
            self.tokens[user] = answer.json()["access_token"]
        return self.tokens[user]

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        """A token signed with this realm's key, carrying claims its endpoint never issues."""
        return jwt.encode(claims, self.config.key, algorithm="RS256",
                          headers={"kid": public_jwk(self.config.key)["kid"], **headers})


def start_issuer(state_dir: Path) -> Issuer:
    server = make_server("127.0.0.1", 0, Flask("placeholder"), threaded=True)
    config = IssuerConfig(
        issuer=f"http://127.0.0.1:{server.port}/realms/auxip",
        key=load_or_create_key(key_path(state_dir)),
        realm=realm_of(USERS), lifetime_s=3600,
    )
    server.app = create_app(config)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return Issuer(server, config)


@pytest.fixture(scope="package")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    running = start_issuer(tmp_path_factory.mktemp("prip-issuer"))
    yield running
    stop(running.server)


@pytest.fixture(scope="package")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    running = start_issuer(tmp_path_factory.mktemp("prip-other-issuer"))
    yield running
    stop(running.server)


def reset_caches(*, runtime_too: bool = False) -> None:
    """Make the functions read their configuration again on their next request."""
    if prip_service.current.cache_info().currsize:
        prip_service.current().close()
    prip_service.current.cache_clear()
    endpoint_policy.current.cache_clear()
    if runtime_too:
        if runtime.current.cache_info().currsize:
            runtime.current().close()
        runtime.current.cache_clear()


def set_env(**values: str | None) -> dict[str, str | None]:
    """Set (None: unset) AUXIP_* variables for the functions' next request; returns what
    they were, to be given back to set_env."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_caches()
    return saved


@pytest.fixture(scope="package")
def function_env(settings: Settings, issuer: Issuer) -> Iterator[dict[str, str]]:
    """AUXIP_* of the test stack (set by the stack fixture) plus the issuer and test knobs."""
    values = {**TEST_ENV, "AUXIP_AUTH_ISSUER": issuer.issuer}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    reset_caches(runtime_too=True)
    yield dict(os.environ)
    reset_caches(runtime_too=True)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass
class Served:
    server: BaseWSGIServer

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture(scope="package")
def prip(function_env: dict[str, str]) -> Iterator[Served]:
    app = functions_framework.create_app(target="handle",
                                         source=str(REPO / "functions" / "prip" / "main.py"))
    served = Served(serve(app))
    yield served
    stop(served.server)


@pytest.fixture(scope="package")
def notify_function(function_env: dict[str, str]) -> Iterator[Served]:
    app = functions_framework.create_app(target="handle",
                                         source=str(REPO / "functions" / "notify" / "main.py"))
    served = Served(serve(app))
    yield served
    stop(served.server)


@pytest.fixture(scope="package", autouse=True)
def no_subscription_left_running(settings: Settings) -> Iterator[None]:
    """The subscriptions these tests make (to client.example.org and the like) cancelled when
    they are done: left running, every product a later test publishes would have notify try
    each of them, and without DNS here each try waits out the resolver (~50 s), holding the
    router's workers while later deliveries queue."""
    yield
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE subscriptions SET status = 'cancelled' WHERE status <> 'cancelled'")


@pytest.fixture(scope="module")
def seeded(function_env: dict[str, str], settings: Settings, s3: Any) -> None:
    """The catalogue of catalogue.py, afresh for each test module."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        catalogue.seed(conn, s3, settings.archive_bucket)


class Api:
    """HTTP calls to prip as a given user (None: no credentials)."""

    def __init__(self, base: str, issuer: Issuer, http: httpx.Client) -> None:
        self.root = f"{base}/odata/v1"
        self.issuer = issuer
        self.http = http

    def headers(self, user: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if user is not None:
            headers["Authorization"] = f"Bearer {self.issuer.token(user)}"
        return headers

    def request(self, method: str, path: str, user: str | None = "alice", *,
                params: Any = None, headers: dict[str, str] | None = None,
                **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.root}/{path}".rstrip("/"), params=params,
                                 headers=self.headers(user, headers), **kwargs)

    def get(self, path: str, user: str | None = "alice", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, user, **kwargs)

    def products(self, user: str | None = "alice", **options: str) -> httpx.Response:
        return self.get("Products", user, params={f"${k}": v for k, v in options.items()})


@pytest.fixture(scope="package")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
def api(prip: Served, issuer: Issuer, http: httpx.Client) -> Api:
    return Api(prip.base, issuer, http)
