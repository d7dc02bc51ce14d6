"""Real HTTP endpoints for the router tests: subscribers that record what they receive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the request arrived
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def event_id(self) -> str | None:
        return self.headers.get("ce-id")


# Environment proxies must not capture loopback requests.
_CLIENT = httpx.Client(trust_env=False, timeout=10)

# (request, index of this request from 0) -> (status, headers, body)
Responder = Callable[[Received, int], tuple[int, dict[str, str], bytes]]


def accept(_request: Received, _index: int) -> tuple[int, dict[str, str], bytes]:
    return 202, {}, b""


class Subscriber:
    """A ThreadingHTTPServer on a free loopback port; `respond` decides each answer."""

    def __init__(self, respond: Responder = accept) -> None:
        self.respond = respond
        self.received: list[Received] = []
        self._lock = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Received(
                    time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with owner._lock:
                    index = len(owner.received)
                    owner.received.append(request)
                    owner._lock.notify_all()
                status, headers, payload = owner.respond(request, index)
                head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(payload)}"]
                head += [f"{name}: {value}" for name, value in headers.items()]
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=lambda: self.server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.url} received {len(self.received)} requests, expected {count}")
                self._lock.wait(remaining)
            return list(self.received)

    def ids(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.received if r.event_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def post_event(
    base_url: str,
    event_type: str,
    *,
    event_id: str,
    source: str = "/tests/router",
    subject: str | None = None,
    data: bytes = b'{"ok": true}',
    content_type: str | None = "application/json",
    extensions: dict[str, str] | None = None,
    path: str = "/",
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST one event in binary mode."""
    headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": source, "ce-type": event_type}
    if subject is not None:
        headers["ce-subject"] = subject
    if content_type is not None:
        headers["content-type"] = content_type
    for name, value in (extensions or {}).items():
        headers[f"ce-{name}"] = value
    return (client or _CLIENT).post(base_url.rstrip("/") + path, headers=headers, content=data)
