"""A Logger that queues a plain line itself when the root's channel is the only handler its
line would reach, without making a LogRecord.

logging's own call is most of a line's cost where requests are served: the record (~20
attributes), the filters asked, the loggers walked for handlers, the handler's dispatch.
The writer process needs none of it: `ecs_format.to_wire`'s ten plain values carry all a
line has when it has no `extra=`, exception or stack. So when a line would reach exactly
one handler, the root's `ChannelHandler` writing JSON to the writer process, and nothing
could see it on the way (no filter on the logger or the handler, no handler on a logger
between), this logger puts those values on the queue itself: the same bytes in the file,
for about half the instructions.

Everything else takes logging's own path, unchanged: a line with `extra=`, `exc_info` or
`stack_info`, a logger or an ancestor with a handler of its own (a test's caplog, the
security events' file, gunicorn's loggers), a filter, a second root handler, a message
whose arguments do not format (logging reports it as it always does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.adapters.telemetry import records
from shared.adapters.telemetry.log_queue import QUEUE_SIZE

# The root's handler this logger may bypass (a `logging.ChannelHandler` whose channel is
# the writer process's), and what the handler would add to the line: the bound fields and
# the current span's ids. Set by `install`; bypassed only while it is the root's only handler.
_channel: Any = None
_fields: Callable[[], dict[str, str] | None] = dict
_span: Callable[[], tuple[int, int] | None] = type(None)


class QueuedLogger(logging.Logger):
    def _log(self, level: int, msg: object, args: Any, exc_info: Any = None,
             extra: Mapping[str, object] | None = None, stack_info: bool = False,
             stacklevel: int = 1) -> None:
        handler = _channel
        if (handler is None or exc_info or extra is not None or stack_info or self.filters
                or self.disabled or not _reaches_only(self, handler, level)):
            super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)
            return
        try:
            text = msg if type(msg) is str else str(msg)
            if args:
                # logging's "%(key)s" with a mapping as the only argument
                one = args[0] if len(args) == 1 else None
                text = text % (one if isinstance(one, Mapping) and one else args)
        except Exception:  # noqa: BLE001 - logging's own path reports it as it always does
            super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)
            return
        writer = handler.writer
        lines = writer.lines
        if len(lines) >= QUEUE_SIZE:
            type(handler).dropped += 1
            return
        lines.append((handler.number, time.time(), level, self.name, text,
                      records.PID[0] if logging.logProcesses else None, None,
                      _fields() or None, _span(), None))
        if writer.idle:
            writer.wake.set()


def _reaches_only(logger: logging.Logger, handler: logging.Handler, level: int) -> bool:
    """True when logging would hand this line to `handler` alone, as the root's only one."""
    current: logging.Logger | None = logger
    while current is not None:
        handlers = current.handlers
        if handlers:
            return (current.parent is None and len(handlers) == 1 and handlers[0] is handler
                    and level >= handler.level and not handler.filters)
        if not current.propagate:
            return False  # no handler reached: logging's last resort decides
        current = current.parent
    return False


def install(handler: logging.Handler | None, fields: Callable[[], dict[str, str] | None],
            span: Callable[[], tuple[int, int] | None]) -> None:
    """Let loggers queue their lines for `handler` (None: never bypass a handler), with
    `fields()` and `span()` as the handler would take them: loggers made from now on are
    QueuedLoggers, and so are those made already with logging's own class (the same
    object, so every module's `log` keeps working)."""
    global _channel, _fields, _span
    _channel, _fields, _span = handler, fields, span
    if handler is None:
        return
    if logging.getLoggerClass() is logging.Logger:
        logging.setLoggerClass(QueuedLogger)
    for existing in list(logging.Logger.manager.loggerDict.values()):
        if type(existing) is logging.Logger:
            existing.__class__ = QueuedLogger
