"""Broker ingress: HTTP on the router port, like Knative's broker ingress.

POST / (the default broker) or POST /<namespace>/<broker> with a CloudEvent in binary or
structured mode. 202 only once the event and one delivery per matching Trigger are
committed; 400 with a reason for anything that is not a CloudEvent; 404 for an unknown
broker; 413 for an oversized body; 503 when PostgreSQL cannot take the event (the sender
keeps it and retries). GET /healthz answers 200 while the database answers.

The same event (source + id) sent twice is routed twice: Knative delivers at least once and
every auxip handler is idempotent, so the router does not de-duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devstack.router import logs, wire
from devstack.router.topology import Broker, Topology

# (event, broker) -> number of deliveries created; raises on storage failure.
Ingest = Callable[[wire.Event, Broker], int]
Health = Callable[[], bool]


class IngressServer(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of producers connecting at once must queue, not be refused.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        topology: Topology,
        ingest: Ingest,
        healthy: Health,
        max_body_bytes: int,
    ) -> None:
        self.topology = topology
        self.ingest = ingest
        self.healthy = healthy
        self.max_body_bytes = max_body_bytes
        super().__init__(address, IngressHandler)


class IngressHandler(BaseHTTPRequestHandler):
    server: IngressServer
    protocol_version = "HTTP/1.1"  # keep-alive: producers reuse their connections
    disable_nagle_algorithm = True
    server_version = "auxip-router"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            body = self._read_body()
        except _BodyError as error:
            self._reply(error.status, error.reason)
            return
        broker = self.server.topology.broker_for_path(self.path)
        if broker is None:
            self._reply(404, f"no broker at {self.path} (use / or /<namespace>/<broker>)")
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            event = wire.parse(headers, body)
        except wire.WireError as error:
            logs.warning("rejected request", reason=str(error), path=self.path)
            self._reply(400, str(error))
            return
        try:
            self.server.ingest(event, broker)
        except Exception as error:
            logs.exception("could not store event", event_id=event.id, type=event.type)
            self._reply(503, f"event not stored: {type(error).__name__}")
            return
        self._reply(202, None)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != "/healthz":
            self._reply(404, "not found")
            return
        try:
            healthy = self.server.healthy()
        except Exception:
            healthy = False
        self._reply(200 if healthy else 503, None, {"status": "ok" if healthy else "database unavailable"})

    def do_OPTIONS(self) -> None:  # noqa: N802
        # Knative's data plane lets senders probe with OPTIONS; the answer lists POST.
        self._discard_body()
        self._reply(200, None, extra_headers={"Allow": "POST, OPTIONS"})

    def do_PUT(self) -> None:  # noqa: N802
        self._refuse()

    def do_DELETE(self) -> None:  # noqa: N802
        self._refuse()

    def do_PATCH(self) -> None:  # noqa: N802
        self._refuse()

    def _refuse(self) -> None:
        self._discard_body()
        self._reply(405, "CloudEvents are POSTed", extra_headers={"Allow": "POST"})

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise _BodyError(400, "Content-Length is not a number") from None
        if length < 0:
            self.close_connection = True
            raise _BodyError(400, "Content-Length is negative")
        if length > self.server.max_body_bytes:
            self.close_connection = True  # the unread body would poison the connection
            raise _BodyError(413, f"body larger than {self.server.max_body_bytes} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise _BodyError(400, "body shorter than Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _BodyError(400, "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > self.server.max_body_bytes:
                self.close_connection = True
                raise _BodyError(413, f"body larger than {self.server.max_body_bytes} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _discard_body(self) -> None:
        try:
            self._read_body()
        except _BodyError:
            self.close_connection = True

    def _reply(
        self,
        status: int,
        reason: str | None,
        document: dict | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        if document is None and reason is not None:
            document = {"error": reason}
        body = json.dumps(document).encode() if document is not None else b""
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines.append(f"Content-Length: {len(body)}")
        if body:
            lines.append("Content-Type: application/json")
        for name, value in (extra_headers or {}).items():
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        # One write for headers and body: no small-packet delay on keep-alive connections.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # requests are logged as JSON by the router itself


class _BodyError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
