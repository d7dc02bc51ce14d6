"""Logs in the Elastic Common Schema (ECS): one JSON object per line, formatted by Elastic's
`ecs-logging`, with the event, the product and the trace of the invocation that wrote it,
so one file's story is one query in the log store (Elastic, Graylog, Loki, Wazuh...).

Fields: `@timestamp`, `log.level`, `log.logger`, `message`, `ecs.version`, `service.name`,
`process.pid`, `trace.id` / `span.id` (the span continuing the CloudEvent's traceparent),
`event.id` (the CloudEvent's id) and auxip's own under `auxip.*` (`auxip.event_type`,
`auxip.subject`, `auxip.product`). The auxip fields come from a context variable (`bound`),
so lines written deep inside `shared` by modules that know nothing of events carry them.

Formatting is not done where requests are served (ecs-logging takes ~30 us a line: at
10,000 lines a second, a third of the interpreter and its GIL). Here is the loggers' side:
the record (logging's documented cheap settings: no caller frame, no thread or process
name, `records.LeanRecord`), then, in the handler (`ChannelHandler`), its message merged
with its arguments, the bound fields and the current span's ids (true only there) as
plain values (`ecs_format.to_wire`) on the process's queue. No formatting, no I/O; past
QUEUE_SIZE lines waiting, new ones are dropped and counted (`dropped()`). A line that would
reach that handler alone is queued by its logger without a record (`queued_logger`). The queue, the
writer thread and the log writer process that formats and writes the lines are
`telemetry.log_queue`'s.

JSON to stderr, to a real file or to a path (the security events' file) goes to the log
writer process. Text lines (AUXIP_LOG_FORMAT=text), a stream that has no descriptor (a
test's StringIO, a test runner's stand-in for sys.stderr) and syslog are formatted by the
writer thread itself, in this process.
"""

from __future__ import annotations

import copy
import io
import logging
import logging.handlers
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from shared.adapters.telemetry import ecs_format, queued_logger, records
from shared.adapters.telemetry.ecs_format import CONTEXT, CONTEXT_KEYS, TRACE
from shared.adapters.telemetry.log_queue import (
    QUEUE_SIZE,
    Channel,
    Local,
    Marker,
    Writer,
    flush_all,
    writer,
)

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


def capture(record: logging.LogRecord) -> None:
    """The bound fields and the current span, onto the record (in the thread that logs)."""
    record.__dict__[CONTEXT] = _fields.get() or None
    record.__dict__[TRACE] = span_ids()


# The current span's ids, remembered with the OpenTelemetry context they were read from: a
# context is immutable and stays current for a whole invocation, so most lines find theirs
# here, for one lookup instead of OpenTelemetry's chain of six calls.
_span_seen: tuple[object, tuple[int, int] | None] = (None, None)


def span_ids() -> tuple[int, int] | None:
    """(trace id, span id) of the current span; None outside one."""
    global _span_seen
    current = otel_context.get_current()
    seen = _span_seen  # one read: another thread may replace it meanwhile
    if seen[0] is current:
        return seen[1]
    span = trace.get_current_span(current).get_span_context()
    ids = (span.trace_id, span.span_id) if span.is_valid else None
    _span_seen = (current, ids)
    return ids


class EcsFormatter(ecs_format.EcsFormatter):
    """The ECS formatter; used directly on a handler, it takes the context then and there."""

    def context_of(self, record: logging.LogRecord) -> tuple[dict[str, str], Any]:
        if CONTEXT not in record.__dict__:
            capture(record)
        return super().context_of(record)


class TextFormatter(logging.Formatter):
    """For a developer's terminal (AUXIP_LOG_FORMAT=text): the same fields, one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if CONTEXT not in record.__dict__:
            capture(record)
        fields = record.__dict__[CONTEXT] or {}
        span = record.__dict__[TRACE]
        extra = [f"{k}={fields[k]}" for k in CONTEXT_KEYS if k in fields]
        action = getattr(record, "event.action", None)
        if action:
            extra.append(f"action={action}")
        if span:
            extra.append(f"trace_id={span[0]:032x}")
        return f"{line} [{' '.join(extra)}]" if extra else line


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


def formatter_for(service: str, fmt: str) -> logging.Formatter:
    if fmt == "json":
        return EcsFormatter(service)
    return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class ChannelHandler(logging.Handler):
    """The logger's side, in the thread that logs: takes what the line needs, queues it."""

    dropped = 0  # lines not queued because QUEUE_SIZE were waiting (every channel's)

    def __init__(self, writer: Writer, channel: Channel) -> None:
        super().__init__()
        self.writer, self.channel = writer, channel
        self.number, self.remote = channel.number, channel.remote is not None
        self.auxip = True

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        # The whole of the handler's work, here rather than in emit (a call less a line);
        # no handler lock: the deque is thread-safe, and the lock costs every line.
        if self.filters and not self.filter(record):
            return False
        try:
            writer = self.writer
            lines = writer.lines
            if len(lines) >= QUEUE_SIZE:
                ChannelHandler.dropped += 1
                return True
            # The message now: its arguments may change (or be another thread's) later.
            message = record.getMessage()
            context = _fields.get() or None
            ids = span_ids()
            if self.remote:  # plain values, for the writer process: the record ends here
                lines.append(ecs_format.to_wire(self.number, record, message, context, ids))
            else:
                record.message = message
                record.__dict__[CONTEXT] = context
                record.__dict__[TRACE] = ids
                if record.exc_info:
                    record = _detached(record)
                lines.append(Local(self.number, record))
            if writer.idle:
                writer.wake.set()
        except Exception:  # noqa: BLE001 - logging must not fail the caller
            self.handleError(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def close(self) -> None:
        """Write what is queued for this channel, then forget it."""
        number = self.channel.number
        self.writer.call(Marker(lambda writer: writer.close(number)))
        super().close()


def _detached(record: logging.LogRecord) -> logging.LogRecord:
    """A copy whose exception is text (a traceback cannot travel); other handlers of the
    logger keep the original."""
    copied = copy.copy(record)
    copied.__dict__.update(ecs_format.error_fields(record))
    copied.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")  # type: ignore[misc]
    copied.exc_info = None
    return copied


_numbers = iter(range(1, 1 << 62))


def _stderr_descriptor() -> int | None:
    """2 when sys.stderr is the process's own (not a test runner's stand-in)."""
    stream = sys.stderr
    if stream is None or stream is not sys.__stderr__:
        return None
    try:
        return 2 if stream.fileno() == 2 else None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


def _descriptor(stream: IO[str]) -> int | None:
    try:
        fd = stream.fileno()
        stream.flush()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    return fd


def channel(service: str, fmt: str, target: IO[str] | Path | logging.Handler | None = None,
            ) -> ChannelHandler:
    """A handler for a logger, writing to `target`: None (stderr), a stream, a file path
    (reopened when moved), or a handler of its own (run by the writer thread, with its own
    formatter). JSON to stderr, a stream with a descriptor, or a path goes through the
    writer process."""
    remote: tuple[str, int | str] | None = None
    if isinstance(target, logging.Handler):
        local = target
    else:
        if target is None:
            local = StderrHandler()
            fd = _stderr_descriptor()
        elif isinstance(target, Path):
            target.parent.mkdir(parents=True, exist_ok=True)
            local = logging.handlers.WatchedFileHandler(target, encoding="utf-8", delay=True)
            fd = None
            remote = ("path", str(target))
        else:
            local = logging.StreamHandler(target)
            fd = _descriptor(target)
        if fd is not None:
            remote = ("fd", fd)
    if local.formatter is None:
        local.setFormatter(formatter_for(service, fmt))
    if fmt != "json":
        remote = None
    process_writer = writer()
    opened = Channel(next(_numbers), service, local, remote)
    process_writer.put(Marker(lambda writer: writer.open(opened)))
    return ChannelHandler(process_writer, opened)


def dropped() -> int:
    """Lines dropped since the process started because the queue was full."""
    return ChannelHandler.dropped


__all__ = ["bound", "channel", "configure", "dropped", "flush_all", "writer"]


def _cheap_records() -> None:
    # logging's documented savings ("Optimization"): no caller frame, no thread or
    # multiprocessing names. ECS lines leave them out (log.origin, process.thread/name).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    records.install()  # the same record, made for less (records.py)


def configure(service: str, *, level: str = "INFO", fmt: str = "json",
              stream: IO[str] | None = None) -> ChannelHandler:
    """Send the root logger's records to `stream` (stderr) in `fmt`, through the queue;
    idempotent: a second call replaces what the first one installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "auxip", False):
            root.removeHandler(handler)
            handler.close()
    if fmt == "json":
        _cheap_records()
    handler = channel(service, fmt, stream)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Lines for the writer process alone skip logging's record (queued_logger).
    queued_logger.install(handler if handler.remote else None, _fields.get, span_ids)
    # One INFO line per HTTP request the outbox makes would drown the function's own lines.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler
