"""Logs in the Elastic Common Schema (ECS): one JSON object per line, formatted by Elastic's
`ecs-logging`, with the event, the product and the trace of the invocation that wrote it,
so one file's story is one query in the log store (Elastic, Graylog, Loki, Wazuh...).

Fields: `@timestamp`, `log.level`, `log.logger`, `message`, `ecs.version`, `service.name`,
`process.*`, `trace.id` / `span.id` (the span continuing the CloudEvent's traceparent),
`event.id` (the CloudEvent's id) and auxip's own under `auxip.*` (`auxip.event_type`,
`auxip.subject`, `auxip.product`). The auxip fields come from a context variable (`bound`),
so lines written deep inside `shared` by modules that know nothing of events carry them.

Never blocking: a line is formatted in the thread that logs (where the context variable and
the current span are) and put on an in-memory queue; one listener thread per process writes
the queue to the stream (`QueueHandler` + `QueueListener`, stdlib). A slow or stuck stderr
(a full pipe, a paused collector) costs the request nothing but memory, bounded: past
QUEUE_SIZE lines waiting, new ones are dropped and counted. The queue is drained at exit
(atexit), so a function's last lines are not lost when gunicorn stops a worker, and a
forked child (a gunicorn worker forked after set-up) gets a listener thread of its own.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

import ecs_logging
from opentelemetry import trace

CONTEXT_KEYS = ("event_id", "event_type", "subject", "product")
QUEUE_SIZE = 100_000

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


class EcsFormatter(ecs_logging.StdlibFormatter):
    """ecs-logging's formatter, plus the service, the trace and auxip's bound fields."""

    def __init__(self, service: str) -> None:
        # log.original repeats `message`; the logger names the module, and where in it a
        # line was written (log.origin) or which thread wrote it costs a third of a line...
        super().__init__(exclude_fields=("log.original", "log.origin", "process.thread",
                                         "process.name"))
        self.service = service

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        document = super().format_to_ecs(record)
        document.setdefault("service", {})["name"] = self.service
        fields = _fields.get()
        if fields:
            if "event_id" in fields:
                document.setdefault("event", {}).setdefault("id", fields["event_id"])
            auxip = document.setdefault("auxip", {})
            for key in CONTEXT_KEYS[1:]:
                if key in fields:
                    auxip.setdefault(key, fields[key])
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            document.setdefault("trace", {})["id"] = trace.format_trace_id(span.trace_id)
            document.setdefault("span", {})["id"] = trace.format_span_id(span.span_id)
        return document


class TextFormatter(logging.Formatter):
    """For a developer's terminal (AUXIP_LOG_FORMAT=text): the same fields, one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields.get()
        span = trace.get_current_span().get_span_context()
        extra = [f"{k}={fields[k]}" for k in CONTEXT_KEYS if k in fields]
        action = getattr(record, "event.action", None)
        if action:
            extra.append(f"action={action}")
        if span.is_valid:
            extra.append(f"trace_id={trace.format_trace_id(span.trace_id)}")
        return f"{line} [{' '.join(extra)}]" if extra else line


class _Preformatted(logging.Formatter):
    """The listener's side: the line was formatted by the thread that logged it."""

    def format(self, record: logging.LogRecord) -> str:
        return str(record.msg)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written (a test runner swaps it,
    and may have closed its own by then: the process's real stderr takes the line)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        current = sys.stderr
        return sys.__stderr__ if getattr(current, "closed", False) else current  # type: ignore[return-value]

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """A full queue (the stream cannot keep up) drops the line rather than wait."""

    dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


class Pipeline:
    """A queue handler for a logger and the listener thread writing its queue to `target`."""

    def __init__(self, target: logging.Handler, formatter: logging.Formatter) -> None:
        self.queue: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
        self.handler = _DroppingQueueHandler(self.queue)
        self.handler.setFormatter(formatter)
        self.handler.auxip = True  # type: ignore[attr-defined]
        self.target = target
        if target.formatter is None:
            target.setFormatter(_Preformatted())
        self._lock = threading.Lock()
        self.listener: logging.handlers.QueueListener | None = None
        self.start()

    def start(self) -> None:
        with self._lock:
            self.listener = logging.handlers.QueueListener(self.queue, self.target,
                                                           respect_handler_level=False)
            self.listener.start()
            _running.add(self)

    def stop(self) -> None:
        """Write what is queued, then stop the thread (idempotent)."""
        with self._lock:
            if self.listener is not None and self.listener._thread is not None:
                self.listener.stop()
            self.listener = None
            _running.discard(self)
        self.target.flush()

    def forked(self) -> None:
        # The child has the queue and its lines but not the parent's thread: start its own.
        self._lock = threading.Lock()
        if self.listener is not None:
            self.listener = None
            self.start()


_running: set[Pipeline] = set()


def flush_all() -> None:
    """Drain every queue (atexit; a test may call it to read what was logged)."""
    for pipeline in list(_running):
        pipeline.stop()
        pipeline.start()


def _stop_all() -> None:
    for pipeline in list(_running):
        pipeline.stop()


def _after_fork() -> None:
    for pipeline in list(_running):
        pipeline.forked()


atexit.register(_stop_all)
os.register_at_fork(after_in_child=_after_fork)


def formatter_for(service: str, fmt: str) -> logging.Formatter:
    if fmt == "json":
        return EcsFormatter(service)
    return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure(service: str, *, level: str = "INFO", fmt: str = "json",
              stream: IO[str] | None = None) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) in `fmt`, through the queue;
    idempotent: a second call replaces what the first one installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "auxip", False):
            root.removeHandler(handler)
            pipeline = getattr(handler, "pipeline", None)
            if pipeline is not None:
                pipeline.stop()
    target = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    pipeline = Pipeline(target, formatter_for(service, fmt))
    pipeline.handler.pipeline = pipeline  # type: ignore[attr-defined]
    root.addHandler(pipeline.handler)
    root.setLevel(level.upper())
    # One INFO line per HTTP request the outbox makes would drown the function's own lines.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return pipeline.handler
