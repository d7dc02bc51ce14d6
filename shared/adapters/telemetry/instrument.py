"""`@instrumented("ingest")`: what a function's `handle` wears, below functions-framework's
decorator, to be observed:

    @functions_framework.cloud_event
    @instrumented("ingest")
    def handle(event: CloudEvent) -> None: ...

- at import: `GET /metrics` on the app functions-framework is building (see `metrics`),
  with the function's series whose labels are known in advance at zero;
- once per process, at the first invocation (after gunicorn forked its worker, so the
  span exporter's thread lives in the process that serves): JSON logs and tracing;
- per invocation: a span that continues the event's `traceparent` (or an HTTP request's
  `traceparent` header), the event id / type / product bound to every log line, the
  stage's duration and outcome counted. Exceptions propagate unchanged, so the
  framework still answers 500 and the broker retries.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import flask
from cloudevents.http import CloudEvent
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.adapters.telemetry import logging as json_logs
from shared.adapters.telemetry import metrics, security_events, tracing
from shared.adapters.telemetry.settings import TelemetrySettings
from shared.core.arrival import locate

H = TypeVar("H", bound=Callable[..., Any])
log = logging.getLogger("auxip.telemetry")

_configured = threading.Event()
_configure_lock = threading.Lock()


def instrumented(function: str) -> Callable[[H], H]:
    def decorate(handle: H) -> H:
        if flask.has_app_context():
            metrics.expose(flask.current_app)
        metrics.initialise(function)

        @functools.wraps(handle)
        def observed(arg: Any, *args: Any, **kwargs: Any) -> Any:
            configure(function)
            if isinstance(arg, CloudEvent):
                return _observe_event(function, handle, arg, *args, **kwargs)
            return _observe_request(function, handle, arg, *args, **kwargs)

        return observed  # type: ignore[return-value]

    return decorate


def configure(function: str, settings: TelemetrySettings | None = None) -> None:
    """Logs and tracing for this process (the first call wins; later ones return at once)."""
    if _configured.is_set():
        return
    with _configure_lock:
        if _configured.is_set():
            return
        s = settings or TelemetrySettings()
        # Knative names the Service in K_SERVICE; locally the function's own name stands.
        service = os.environ.get("K_SERVICE") or function
        json_logs.configure(service, level=s.log_level, fmt=s.log_format)
        security_events.configure(service, s.security_events, fmt=s.log_format)
        tracing.configure(f"auxip-{service}", s.otlp_endpoint)
        _configured.set()


def product_of(event: CloudEvent) -> str | None:
    """The product an event is about: its data's name, else the product its subject (an
    inbox key for file.arrived, e.g. `X.SAFE/manifest.safe`) belongs to."""
    data = event.data if isinstance(event.data, dict) else {}
    for field in ("name", "logical_name"):
        if isinstance(data.get(field), str):
            return data[field]
    subject = event.get("subject")
    return locate("", subject).name if subject else None


def _observe_event(function: str, handle: Callable[..., Any], event: CloudEvent,
                   *args: Any, **kwargs: Any) -> Any:
    parent = tracing.context_from({tracing.TRACEPARENT: event.get(tracing.TRACEPARENT),
                                   tracing.TRACESTATE: event.get(tracing.TRACESTATE)})
    product = product_of(event)
    attributes = {"cloudevents.event_id": event["id"], "cloudevents.event_type": event["type"],
                  "cloudevents.event_source": event["source"], "auxip.function": function}
    if event.get("subject"):
        attributes["cloudevents.event_subject"] = event["subject"]
    if product:
        attributes["auxip.product"] = product
    with tracing.tracer().start_as_current_span(
        function, context=parent, kind=SpanKind.CONSUMER, attributes=attributes,
        record_exception=True, set_status_on_exception=True,
    ), json_logs.bound(event_id=event["id"], event_type=event["type"],
                        subject=event.get("subject"), product=product):
        return _timed(function, lambda: handle(event, *args, **kwargs))


def _observe_request(function: str, handle: Callable[..., Any], request: flask.Request,
                     *args: Any, **kwargs: Any) -> Any:
    parent = tracing.context_from({tracing.TRACEPARENT: request.headers.get("traceparent"),
                                   tracing.TRACESTATE: request.headers.get("tracestate")})
    with tracing.tracer().start_as_current_span(
        function, context=parent, kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "url.path": request.path,
                    "auxip.function": function},
        record_exception=True, set_status_on_exception=True,
    ) as span:
        response = _timed(function, lambda: handle(request, *args, **kwargs),
                          failed=lambda r: _status_of(r) >= 500)
        status = _status_of(response)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response


def _timed(function: str, call: Callable[[], Any],
           failed: Callable[[Any], bool] = lambda _: False) -> Any:
    began = time.perf_counter()
    outcome = "error"
    try:
        result = call()
        outcome = "error" if failed(result) else "ok"
        return result
    except Exception as error:
        # Logged here, where the event and trace are still bound to the line; the framework
        # logs the traceback next (without them) and answers 500, so the broker retries.
        log.error("%s failed: %s: %s", function, type(error).__name__, error)
        raise
    finally:
        metrics.invoked(function, outcome, time.perf_counter() - began)


def _status_of(response: Any) -> int:
    if isinstance(response, flask.Response):
        return response.status_code
    if isinstance(response, tuple) and len(response) > 1 and isinstance(response[1], int):
        return response[1]
    return 200

