"""OpenTelemetry spans, and W3C trace context carried in the CloudEvent `traceparent`
(and `tracestate`) extension, as the CloudEvents distributed-tracing extension has it: a
function continues the trace of the event it handles and hands it on in every event it
emits, so one file's path through inbox-adapter, ingest, package and publish is one trace.

One TracerProvider per process. Spans are always made (trace ids then reach the logs and
the emitted events even with no collector); they are exported over OTLP/HTTP only when
AUXIP_OTLP_ENDPOINT is set, and to memory when a test asks (`in_memory`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACER = "auxip"

_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: TracerProvider | None = None


def configure(service: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """The process's provider, made on the first call (later calls return it unchanged:
    OpenTelemetry allows one global provider per process)."""
    global _provider
    with _lock:
        if _provider is None:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            if otlp_endpoint:
                # Imported here: only processes that export need the exporter's packages.
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
                exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
                provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            _provider = provider
        return _provider


def in_memory(service: str = "auxip-test") -> InMemorySpanExporter:
    """An exporter that keeps every span this process ends from now on (tests)."""
    exporter = InMemorySpanExporter()
    configure(service).add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def context_from(carrier: Mapping[str, str | None]) -> context.Context:
    """The remote parent that a `traceparent`/`tracestate` pair names (an empty context
    when there is none or it is malformed: the span then starts a new trace)."""
    present = {k: v for k, v in carrier.items() if isinstance(v, str) and v}
    return _propagator.extract(present)


def current_trace_extensions() -> dict[str, str]:
    """The CloudEvent extensions that continue the current span's trace: pass them to
    `events.envelope.build(..., extensions=...)`. Empty outside a span (CLI, direct calls)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {k: carrier[k] for k in (TRACEPARENT, TRACESTATE) if carrier.get(k)}


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id a traceparent names (`00-<trace id>-<span id>-<flags>`)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None
