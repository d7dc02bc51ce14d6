"""A cheaper LogRecord for processes that log ECS JSON lines.

logging's record spends a third of a line's cost in the logging thread on fields JSON lines
never carry or that are constant once the caller's frame is not looked up (logging's
documented `_srcfile = None`): the file name and module are split out of a path that is
always "(unknown file)", a single argument is checked against the Mapping ABC. This record
sets the same attributes to the same values (so every formatter and handler, pytest's
included, sees what logging's own record would hold) with less work: ~7,000 instructions
of ~44,000 a line in the serving process (callgrind).

It is installed only where its attributes are exactly logging's (`install`), so a Python
whose records carry more (3.12's `taskName`) keeps logging's own record.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

_UNKNOWN = "(unknown file)"  # the path of every record once _srcfile is None
_NAMES = logging._levelToName  # type: ignore[attr-defined]
_START = logging._startTime  # type: ignore[attr-defined]


class LeanRecord(logging.LogRecord):
    """logging.LogRecord's attributes and values, set in one dict update."""

    def __init__(self, name: str, level: int, pathname: str, lineno: int, msg: Any,
                 args: Any, exc_info: Any, func: str | None = None,
                 sinfo: str | None = None, **_kwargs: Any) -> None:
        created = time.time()
        if args and len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            args = args[0]  # logging's "%(key)s" with a mapping as the only argument
        if pathname == _UNKNOWN:
            filename = module = pathname
        else:
            filename, module = _file_and_module(pathname)
        self.__dict__.update(
            name=name, msg=msg, args=args, levelname=_NAMES.get(level) or f"Level {level}",
            levelno=level, pathname=pathname, filename=filename, module=module,
            exc_info=exc_info, exc_text=None, stack_info=sinfo, lineno=lineno,
            funcName=func, created=created, msecs=int((created - int(created)) * 1000) + 0.0,
            relativeCreated=(created - _START) * 1000,
            thread=_thread() if logging.logThreads else None,
            threadName=_thread_name() if logging.logThreads else None,
            processName=_process_name() if logging.logMultiprocessing else None,
            process=PID[0] if logging.logProcesses else None)



# The process id, asked once (and again in a forked child): getpid(2) is a system call a
# line otherwise.
PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: PID.__setitem__(0, os.getpid()))


def _file_and_module(pathname: Any) -> tuple[Any, str]:
    try:
        filename = os.path.basename(pathname)
        return filename, os.path.splitext(filename)[0]
    except (TypeError, ValueError, AttributeError):
        return pathname, "Unknown module"


def _thread() -> int:
    import threading

    return threading.get_ident()


def _thread_name() -> str:
    import threading

    return threading.current_thread().name


def _process_name() -> str | None:
    # As logging does: the standard record asks multiprocessing only if it is loaded.
    import sys

    mp = sys.modules.get("multiprocessing")
    try:
        return mp.current_process().name if mp is not None else "MainProcess"
    except Exception:  # noqa: BLE001 - as logging: a half-loaded multiprocessing
        return "MainProcess"


def install() -> bool:
    """Make LeanRecord logging's record factory when its attributes are logging's own
    (and no one else installed a factory); True when it is in place."""
    current = logging.getLogRecordFactory()
    if current is LeanRecord:
        return True
    if current is not logging.LogRecord:
        return False  # someone else's factory: theirs stays
    standard = logging.LogRecord("n", logging.INFO, _UNKNOWN, 1, "m %s", ("a",), None)
    lean = LeanRecord("n", logging.INFO, _UNKNOWN, 1, "m %s", ("a",), None)
    if standard.__dict__.keys() != lean.__dict__.keys():
        return False
    logging.setLogRecordFactory(LeanRecord)
    return True
