"""Clients of the running stack: tokens from its issuer (real password grants), prip over
HTTP, and a subscriber's notification endpoint that records what it is pushed."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import httpx
from cloudevents.http import CloudEvent
from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, make_server

from devstack.stack.up import StackInfo
from events import bindings
from shared.adapters.settings import Settings

# A line per notification received would drown the report of a failing test.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _grant(token_url: str, user: str) -> str:
    answer = httpx.post(token_url, data={"grant_type": "password", "username": user,
                                         "password": f"{user}-pw", "client_id": "auxip-tests"},
                        timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]


_token = cache(_grant)


def token(settings: Settings, user: str) -> str:
    """A reader's (or subscriber's) access token; cached for the session (they live 5 min,
    longer than any test that uses one)."""
    assert settings.token_url, "the stack runs no token issuer"
    return _token(settings.token_url, user)


def bearer(settings: Settings, user: str, *, fresh: bool = False) -> dict[str, str]:
    """The Authorization header; `fresh` for a test that may run more than 5 min after
    the session's first token (one ordered to the end, say)."""
    if fresh:
        assert settings.token_url, "the stack runs no token issuer"
        return {"Authorization": f"Bearer {_grant(settings.token_url, user)}"}
    return {"Authorization": f"Bearer {token(settings, user)}"}


def prip_root(info: StackInfo) -> str:
    return info.layout.function_url("prip") + "/odata/v1"


class NotificationSink:
    """A subscriber's endpoint: counts the products it is notified of, answers 204."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        app = Flask("notification-sink")

        @app.post("/notify")
        def receive() -> Response:
            body = request.get_json(silent=True) or {}
            with self._lock:
                self.received[str(body.get("ProductName"))] += 1
            return Response(status=204)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}/notify"

    def names(self) -> set[str]:
        with self._lock:
            return set(self.received)

    def twice(self) -> list[str]:
        with self._lock:
            return [name for name, n in self.received.items() if n > 1]

    @contextmanager
    def serving(self) -> Iterator[NotificationSink]:
        with _served(self._server):
            yield self


@contextmanager
def _served(server: BaseWSGIServer) -> Iterator[None]:
    runner = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    runner.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def subscribe(info: StackInfo, user: str, endpoint: str, filter_param: str = "") -> str:
    body = {"NotificationEndpoint": endpoint}
    if filter_param:
        body["FilterParam"] = filter_param
    answer = httpx.post(f"{prip_root(info)}/Subscriptions", json=body,
                        headers=bearer(info.settings, user), timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["Id"]


def post_event(url: str, event: CloudEvent) -> httpx.Response:
    """POST `event` in binary mode, as the broker delivers and the functions send."""
    headers, body = bindings.to_http_binary(event)
    return httpx.post(url, headers=headers, content=body, timeout=120)


class Canary:
    """An HTTP address nothing should ever call (an external entity points at it): records
    every request it gets, whatever the method and path."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        app = Flask("canary")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "HEAD", "PUT"])
        @app.route("/<path:path>", methods=["GET", "POST", "HEAD", "PUT"])
        def hit(path: str) -> Response:
            self.hits.append(f"{request.method} /{path}")
            return Response("", status=404)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}"

    @contextmanager
    def serving(self) -> Iterator[Canary]:
        with _served(self._server):
            yield self
