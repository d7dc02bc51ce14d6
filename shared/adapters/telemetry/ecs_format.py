"""The ECS line of a log record, and the record as it travels to the log writer process.

Shared by the process that logs (`telemetry.logging`) and the writer process
(`telemetry.log_writer`), so this module imports only the standard library and
`ecs-logging`: no OpenTelemetry, no pydantic, to keep the writer small.

What a line says beyond the record itself (the bound fields of the invocation, its trace)
is taken in the thread that logged, where it is true, and carried on the record as
`auxip_context` (a dict) and `auxip_trace` ((trace id, span id) as ints, or None).
"""

from __future__ import annotations

import logging
from traceback import format_tb
from typing import Any

import ecs_logging

CONTEXT_KEYS = ("event_id", "event_type", "subject", "product")
CONTEXT = "auxip_context"
TRACE = "auxip_trace"

# What logging itself sets on a record (and what we add): the rest are a caller's `extra=`.
_BARE = logging.LogRecord("", 0, "", 0, "", (), None).__dict__
_STANDARD = frozenset(_BARE) | {"message", "asctime", CONTEXT, TRACE}
_BARE_LEN = len(_BARE)  # a record with no more attributes than that has no extras

Wire = tuple[Any, ...]


class EcsFormatter(ecs_logging.StdlibFormatter):
    """ecs-logging's formatter, plus the service, the trace and auxip's bound fields."""

    # Our own attributes on a record are not `extra=` fields for ecs-logging to copy.
    _LOGRECORD_DICT = ecs_logging.StdlibFormatter._LOGRECORD_DICT | {CONTEXT, TRACE}

    def __init__(self, service: str) -> None:
        # log.original repeats `message`; the logger names the module, and where in it a
        # line was written (log.origin) or which thread wrote it costs a third of a line...
        super().__init__(exclude_fields=("log.original", "log.origin", "process.thread",
                                         "process.name"))
        self.service = service

    def context_of(self, record: logging.LogRecord) -> tuple[dict[str, str], Any]:
        """The bound fields and (trace id, span id) the record carries."""
        return getattr(record, CONTEXT, None) or {}, getattr(record, TRACE, None)

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        document = super().format_to_ecs(record)
        document.setdefault("service", {})["name"] = self.service
        fields, span = self.context_of(record)
        if fields:
            if "event_id" in fields:
                document.setdefault("event", {}).setdefault("id", fields["event_id"])
            auxip = document.setdefault("auxip", {})
            for key in CONTEXT_KEYS[1:]:
                if key in fields:
                    auxip.setdefault(key, fields[key])
        if span:
            document.setdefault("trace", {})["id"] = f"{span[0]:032x}"
            document.setdefault("span", {})["id"] = f"{span[1]:016x}"
        return document


def error_fields(record: logging.LogRecord) -> dict[str, str]:
    """An exception's ECS fields (what ecs-logging takes from `exc_info`), as text that can
    travel: a traceback cannot leave the process."""
    kind, value, traceback = record.exc_info or (None, None, None)
    fields = {}
    if kind is not None:
        fields["error.type"] = kind.__name__
    if value:
        fields["error.message"] = str(value)
    if traceback is not None:
        fields["error.stack_trace"] = "".join(format_tb(traceback))
    return fields


def to_wire(channel: int, record: logging.LogRecord, message: str,
            context: dict[str, str] | None, trace: tuple[int, int] | None) -> Wire:
    """A record as plain values marshal can write, made in the thread that logs (the
    record itself dies there): its message merged with its arguments, the context taken,
    an exception as text."""
    found = record.__dict__
    extras = ({k: found[k] for k in found.keys() - _STANDARD}
              if len(found) > _BARE_LEN else {})
    if record.exc_info:
        extras.update(error_fields(record))
    return (channel, record.created, record.levelno, record.name, message, record.process,
            extras or None, context, trace, record.stack_info)


def from_wire(item: Wire) -> tuple[int, logging.LogRecord]:
    channel, created, level, name, message, pid, extras, context, trace, stack = item
    record = logging.LogRecord(name, level, "", 0, message, None, None, sinfo=stack)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.process = pid
    if extras:
        record.__dict__.update(extras)
    record.__dict__[CONTEXT] = context
    record.__dict__[TRACE] = trace
    return channel, record
