"""JSON-lines logs: one object per line, with the event, the product and the trace of the
invocation that wrote it, so one file's story is one query in the log store.

Every line has the same keys (`event_id`, `event_type`, `subject`, `product`, `trace_id`,
`span_id` are null outside an invocation): log queries never test whether a key exists.
The fields come from a context variable (`bound`), so lines written deep inside `shared`
by modules that know nothing of events still carry them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

from opentelemetry import trace

CONTEXT_KEYS = ("event_id", "event_type", "subject", "product")

_fields: ContextVar[dict[str, str]] = ContextVar("auxip_log_fields", default={})


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add `fields` to every line logged inside the block (this thread or task only)."""
    token = _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> dict[str, str]:
    return dict(_fields.get())


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            **dict.fromkeys(CONTEXT_KEYS),
            "trace_id": None,
            "span_id": None,
        }
        document.update(_fields.get())
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            document["trace_id"] = trace.format_trace_id(span.trace_id)
            document["span_id"] = trace.format_span_id(span.span_id)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a developer's terminal (AUXIP_LOG_FORMAT=text): the same fields, one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields.get()
        span = trace.get_current_span().get_span_context()
        extra = [f"{k}={fields[k]}" for k in CONTEXT_KEYS if k in fields]
        if span.is_valid:
            extra.append(f"trace_id={trace.format_trace_id(span.trace_id)}")
        return f"{line} [{' '.join(extra)}]" if extra else line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure(service: str, *, level: str = "INFO", fmt: str = "json",
              stream: IO[str] | None = None) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) in `fmt`; idempotent: a second
    call replaces the handler the first one installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "auxip", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.auxip = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # One INFO line per HTTP request the outbox makes would drown the function's own lines.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler
