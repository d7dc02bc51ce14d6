"""With AUXIP_OTLP_ENDPOINT set, a function process exports its spans over OTLP/HTTP to
`<endpoint>/v1/traces` (a real HTTP receiver here, in another process than the spans)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).parents[3]
PROCESS = """
from opentelemetry import trace
from shared.adapters.telemetry.instrument import configure
from shared.adapters.telemetry.tracing import tracer
configure("probe")
with tracer().start_as_current_span("probe-span"):
    pass
trace.get_tracer_provider().force_flush()
"""


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["content-length"]))
        Collector.received.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_are_exported_to_the_otlp_endpoint() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUXIP_")}
        env["AUXIP_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}/"
        done = subprocess.run([sys.executable, "-c", PROCESS], cwd=REPO, env=env, timeout=60,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()
    [(path, content_type, body)] = Collector.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "auxip-probe"
    assert [s.name for scope in resource_spans.scope_spans for s in scope.spans] == ["probe-span"]
