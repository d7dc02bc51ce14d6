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
from json.encoder import encode_basestring_ascii
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


# What a plain line's template is made with (see `LineTemplates`): values no real line holds,
# each found once in ecs-logging's output for a record carrying them.
_MESSAGE = "auxip-template-message-0f1e2d"
_PID = "auxip-template-pid-3c4b5a"
_CREATED = 946684800.5  # 2000-01-01T00:00:00.500Z
_TRACE = (0x0A1B2C3D4E5F60718293A4B5C6D7E8F9, 0x19283746556473AB)
_CONTEXT = {key: f"auxip-template-{key}-6a7b8c" for key in CONTEXT_KEYS}
TEMPLATES = 1000


class LineTemplates:
    """ECS lines for plain records, made from ecs-logging's own line for a record of the
    same shape.

    ecs-logging builds a dict per record and serialises it with sorted keys: ~30 us a line,
    almost all of the log writer process's CPU (at 10,000 lines a second, a third of a
    core). A line's layout depends only on its shape (logger, level, which bound fields,
    whether a span and a pid): its values (time, message, bound fields, ids, pid) are
    strings and a number. So the formatter's line for a record of that shape made of
    placeholder values is cut at the placeholders once, and each line of the shape is that
    template with its own values, JSON-encoded as json.dumps does (ensure_ascii): the same
    bytes ecs-logging writes, for ~3 us. A record with anything else (extras, an
    exception, a stack, a bound value that is not a string) goes to the formatter itself.
    """

    def __init__(self, formatter: EcsFormatter) -> None:
        self.formatter = formatter
        self.templates: dict[tuple[Any, ...], tuple[str, tuple[int, ...]] | None] = {}
        self._second = -1
        self._prefix = ""

    def line(self, item: Wire) -> str | None:
        """The ECS line of a wire item, or None when its shape has no template."""
        _, created, level, name, message, pid, extras, context, trace, stack = item
        if extras or stack or type(message) is not str:
            return None
        if context:
            keys = tuple(context)
            if not _STRINGS.issuperset(map(type, context.values())):
                return None
        else:
            keys = ()
        shape = (name, level, keys, trace is None, pid is None)
        try:
            template = self.templates[shape]
        except KeyError:
            if len(self.templates) >= TEMPLATES:
                self.templates.clear()  # shapes are few; this bounds a pathological caller
            template = self.templates[shape] = self._template(name, level, keys, trace, pid)
        if template is None:
            return None
        text, order = template
        second = int(created)
        if second != self._second:
            self._second, self._prefix = second, self.formatter.formatTime(
                logging.makeLogRecord({"created": created}), datefmt="%Y-%m-%dT%H:%M:%S")
        values = [f"{self._prefix}.{int((created - second) * 1000):03d}Z",
                  encode_basestring_ascii(message), str(pid)]
        if trace is not None:
            values += (f"{trace[0]:032x}", f"{trace[1]:016x}")
        else:
            values += ("", "")
        if context:
            values += map(encode_basestring_ascii, context.values())
        return text % tuple(map(values.__getitem__, order))

    def _template(self, name: str, level: int, keys: tuple[str, ...],
                  trace: tuple[int, int] | None, pid: int | None,
                  ) -> tuple[str, tuple[int, ...]] | None:
        record = logging.LogRecord(name, level, "", 0, _MESSAGE, None, None)
        record.created = _CREATED
        record.msecs = 500.0
        record.process = None if pid is None else _PID  # type: ignore[assignment]
        record.__dict__[CONTEXT] = {key: _CONTEXT.get(key, f"auxip-template-{n}-6a7b8c")
                                    for n, key in enumerate(keys)} or None
        record.__dict__[TRACE] = _TRACE if trace is not None else None
        line = self.formatter.format(record)
        # Each value's placeholder as it stands in that line, its index in `values`, and
        # what stands for it in the template (a timestamp and the ids are inside a JSON
        # string, a pid is a number, the rest come JSON-encoded with their quotes).
        stamp = self.formatter.formatTime(record, datefmt="%Y-%m-%dT%H:%M:%S")
        slots = [(f'"{stamp}.500Z"', 0, '"%s"'), (f'"{_MESSAGE}"', 1, "%s"),
                 (f'"{_PID}"', 2, "%s"), (f"{_TRACE[0]:032x}", 3, "%s"),
                 (f"{_TRACE[1]:016x}", 4, "%s")]
        slots += [(f'"{value}"', 5 + n, "%s")
                  for n, value in enumerate((record.__dict__[CONTEXT] or {}).values())]
        found = []
        for text, index, stand_in in slots:
            if line.count(text) > 1:
                return None  # a placeholder also stands elsewhere: no safe template
            at = line.find(text)
            if at >= 0:
                found.append((at, text, index, stand_in))
        if line.count("auxip-template-") != sum("auxip-template-" in f[1] for f in found):
            return None
        found.sort()
        pieces, order, end = [], [], 0
        for at, text, index, stand_in in found:
            pieces += (line[end:at].replace("%", "%%"), stand_in)
            order.append(index)
            end = at + len(text)
        pieces.append(line[end:].replace("%", "%%"))
        return "".join(pieces), tuple(order)


_STRINGS = frozenset({str})


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
