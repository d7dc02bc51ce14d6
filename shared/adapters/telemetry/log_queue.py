"""The process's queue of log lines, the thread that writes it out, and the log writer
process it feeds (`telemetry.log_writer`); `telemetry.logging` is the loggers' side.

- the thread that logs appends to a deque (plain values for the writer process, from
  `ecs_format.to_wire`, or a record for a channel formatted here) and sets `wake` only
  when the writer thread sleeps for want of lines;
- one writer thread per process: every PAUSE_S, it takes all the deque holds in one
  C-level pass; a batch of lines alone goes down the pipe marshal'ed whole, with no Python
  step a line; markers (open, close, flush, stop) run in turn with the lines;
- the log writer process (started by that thread at the first line, with the same
  interpreter, importing only ecs-logging: ~14 MB) formats the lines and writes them to
  the descriptor it inherits or the file given. It exits on EOF, so it never outlives its
  parent, and runs at nice 10: where CPU is short, requests go first.
Text lines, a stream that has no descriptor and syslog are formatted by the writer thread
itself, in this process.

A writer process that dies is started again once (the lines in its pipe are lost); if it
dies again, this process formats and writes its lines itself from then on; either is said
once on stderr. A slow one blocks only the writer thread: the deque fills, lines are
dropped and counted, a request never waits. At exit (atexit) the deque is written out and
the writer process waited for (bounded), so a function's last lines are not lost; a forked
child (a gunicorn worker forked after set-up) gets its own deque, thread and process.
"""

from __future__ import annotations

import atexit
import logging
import marshal
import operator
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

from shared.adapters.telemetry import ecs_format

QUEUE_SIZE = 100_000
PAUSE_S = 0.05  # the writer thread wakes at most this often: fewer hand-offs of the GIL
EXIT_WAIT_S = 5.0  # at exit, for the queue and the writer process
FLUSH_WAIT_S = 10.0
FRAME_LINES = 500  # lines a frame at most: the writer process's memory stays small
_ROOT = Path(__file__).resolve().parents[3]  # where the `shared` package is importable from


class Channel:
    """One destination: the writer process's (`remote`: ("fd", n) or ("path", p)) when it
    can take it, and the in-process handler (`local`) otherwise or after it failed."""

    def __init__(self, number: int, service: str, local: logging.Handler,
                 remote: tuple[str, int | str] | None) -> None:
        self.number, self.service, self.local, self.remote = number, service, local, remote
        # A descriptor is the process's as it was when opened: the writer process gets the
        # same file even if the number is reused later.
        self.identity = _identity(remote[1]) if remote and remote[0] == "fd" else None


class Local(tuple):  # type: ignore[type-arg]
    """(channel number, record): a line for a channel formatted in this process; its own
    type, so a batch without any is told apart from one with in a single C-level pass."""

    __slots__ = ()

    def __new__(cls, number: int, record: logging.LogRecord) -> Local:
        return super().__new__(cls, (number, record))


class Marker:
    """Something the writer thread does in turn with the lines queued before it; a
    `stopping` one ends the thread."""

    def __init__(self, action: Callable[[Writer], object], *, stopping: bool = False) -> None:
        self.action, self.stopping = action, stopping
        self.done = threading.Event()

    def run(self, writer: Writer) -> bool:  # False: the thread stops
        self.action(writer)
        return not self.stopping


class Writer:
    """The process's queue, its writer thread, and the log writer process it feeds."""

    def __init__(self) -> None:
        self._new_queue()
        self.channels: dict[int, Channel] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.passed: dict[int, tuple[int, int] | None] = {}  # fd -> identity, in the process
        self.restarts = 0
        self.in_process = False  # the writer process died twice: format here from now on
        self._start_thread()

    def _new_queue(self) -> None:
        # Lines (to_wire tuples), Local lines and markers, in order; `idle` says the thread
        # waits on `wake` for the next one (set by whoever appends then).
        self.lines: deque[Any] = deque()
        self.wake = threading.Event()
        self.idle = False

    def _start_thread(self) -> None:
        self.thread = threading.Thread(target=self._run, name="auxip-log-writer", daemon=True)
        self.thread.start()

    def call(self, marker: Marker, timeout: float = FLUSH_WAIT_S) -> bool:
        """Queue `marker` after the lines queued so far; True when it ran within `timeout`."""
        if not self.thread.is_alive():
            return False
        self.put(marker)
        return marker.done.wait(timeout)

    def put(self, item: Any) -> None:
        self.lines.append(item)
        self.wake.set()

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        lines, wake = self.lines, self.wake
        take = lines.popleft
        while True:
            if not lines:
                self.idle = True
                # Looked at again once `idle` is said: a line appended before this look is
                # seen here; one appended after it finds `idle` and sets `wake`.
                if not lines:
                    wake.wait()
                wake.clear()
                self.idle = False
            # All that is there now, taken in one C-level pass (lines appended meanwhile
            # stay for the next round).
            batch = list(map(operator.call, repeat(take, len(lines))))
            try:
                if set(map(type, batch)) == {tuple}:  # lines for the writer process alone
                    self._send(batch)
                    going_on = True
                else:
                    going_on = self._write(batch)
            except Exception as error:  # noqa: BLE001 - a bug here must not stop the logs
                _say(f"lines lost: {error!r}")
                for item in batch:
                    if type(item) is Marker:
                        item.done.set()
                going_on = True
            if not going_on:
                return
            time.sleep(PAUSE_S)  # let lines gather: fewer wake-ups, fewer hand-offs of the GIL

    def _write(self, batch: list[Any]) -> bool:
        wire: list[ecs_format.Wire] = []
        for item in batch:
            kind = type(item)
            if kind is tuple:  # to_wire's, for the writer process
                wire.append(item)
                continue
            if kind is Marker:
                self._send(wire)
                wire = []
                try:
                    going_on = item.run(self)
                finally:
                    item.done.set()
                if not going_on:
                    return False
                continue
            number, record = item
            channel = self.channels.get(number)
            if channel is not None:
                _handle(channel.local, record)
        self._send(wire)
        return True

    def _send(self, wire: list[ecs_format.Wire]) -> None:
        if not wire:
            return
        if self.in_process:
            self._here(wire)
            return
        frames = []
        for start in range(0, len(wire), FRAME_LINES):
            part = wire[start:start + FRAME_LINES]
            try:
                frames.append(_frame("records", part))
            except ValueError:  # an `extra=` value marshal cannot write: as text
                frames.append(_frame("records", [_plain(item) for item in part]))
        if not self._deliver(b"".join(frames)):
            self._here(wire)

    def _here(self, wire: list[ecs_format.Wire]) -> None:
        """Lines for the writer process, formatted and written here (it is gone for good)."""
        for item in wire:
            number, record = ecs_format.from_wire(item)
            if number in self.channels:
                _handle(self.channels[number].local, record)

    def _deliver(self, data: bytes) -> bool:
        """`data` to the writer process (started if need be); False: write here instead."""
        for _ in range(2):
            if self.in_process:
                return False
            try:
                process = self.process or self._spawn()
                _write_all(process.stdin.fileno(), data)  # type: ignore[union-attr]
                return True
            except OSError as error:
                self._died(error)
        return False

    def _spawn(self) -> subprocess.Popen[bytes]:
        remote = [c for c in self.channels.values() if c.remote is not None]
        fds = {int(c.remote[1]): c.identity for c in remote  # type: ignore[index]
               if c.remote[0] == "fd" and int(c.remote[1]) > 2}  # type: ignore[index]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.adapters.telemetry.log_writer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=sorted(fds), env=env)
        self.passed = fds
        opens = b"".join(_frame("open", _open_body(c)) for c in remote)
        _write_all(self.process.stdin.fileno(), opens)  # type: ignore[union-attr]
        return self.process

    def _died(self, error: OSError) -> None:
        process, self.process = self.process, None
        code = None
        if process is not None:
            _close_pipes(process)
            try:
                code = process.wait(1.0)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.restarts == 0:
            self.restarts = 1
            _say(f"the log writer process stopped ({error}; exit code {code}): starting"
                 " another")
        else:
            self.in_process = True
            _say(f"the log writer process stopped again ({error}; exit code {code}): lines"
                 " are formatted and written by this process from now on")

    def open(self, channel: Channel) -> None:
        self.channels[channel.number] = channel
        if self.process is None or channel.remote is None:
            return  # the writer process gets it when it starts
        kind, where = channel.remote
        if kind == "fd" and int(where) > 2 and self.passed.get(int(where), ()) != \
                channel.identity:
            self.stop_process()  # a descriptor it does not have: another process, next line
            return
        self._deliver(_frame("open", _open_body(channel)))

    def close(self, number: int) -> None:
        """Write what is queued, then forget the channel."""
        self.flush()
        channel = self.channels.pop(number, None)
        if channel is None:
            return
        if channel.remote is not None and self.process is not None:
            self._deliver(_frame("close", number))
        channel.local.flush()

    def flush(self) -> None:
        """Every line queued so far, written (the writer process answers when it is)."""
        if self.process is not None and self._deliver(_frame("flush", 1)) and self.process:
            answer = self.process.stdout.fileno()  # type: ignore[union-attr]
            ready, _, _ = select.select([answer], [], [], FLUSH_WAIT_S)
            if ready and len(os.read(answer, 4)) < 4:
                self._died(BrokenPipeError("no answer to a flush"))
        for channel in self.channels.values():
            channel.local.flush()

    def stop_process(self) -> None:
        """EOF to the writer process; it writes what it has, then exits (waited, bounded)."""
        process, self.process = self.process, None
        self.passed = {}
        if process is None:
            return
        _close_pipes(process)
        try:
            process.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            pass  # stuck on its output; EOF already given, it ends when that drains

    # -- the process's life ---------------------------------------------------------------

    def stop(self) -> None:
        self.call(Marker(Writer.stop_process, stopping=True), EXIT_WAIT_S * 2)

    def forked(self) -> None:
        """In a forked child: the parent's queue, thread and writer process stay the
        parent's (its pipe closed here, so only the parent's exit ends it)."""
        self._new_queue()
        if self.process is not None:
            _abandoned.append(self.process)  # not ours to wait for
            _close_pipes(self.process)
        self.process = None
        self.passed = {}
        self.restarts = 0
        self._start_thread()


def _handle(handler: logging.Handler, record: logging.LogRecord) -> None:
    try:
        handler.handle(record)
    except Exception:  # noqa: BLE001 - the writer thread must go on
        handler.handleError(record)


def _frame(kind: str, body: Any) -> bytes:
    payload = marshal.dumps((kind, body))
    return len(payload).to_bytes(4, "big") + payload


def _open_body(channel: Channel) -> tuple[int, str, str, int | str]:
    assert channel.remote is not None
    return (channel.number, channel.service, *channel.remote)


def _plain(item: ecs_format.Wire) -> ecs_format.Wire:
    """The item with what marshal cannot write (an object, a str or int subclass such as
    an enum) as plain text or numbers."""
    extras, context = item[6], item[7]
    return (*item[:4], str(item[4]), item[5],
            {str(k): _plain_value(v) for k, v in extras.items()} if extras else None,
            {str(k): str(v) for k, v in context.items()} if context else None, *item[8:])


def _plain_value(value: Any) -> Any:
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    return str(value)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass


def _identity(fd: int | str) -> tuple[int, int] | None:
    try:
        stat = os.fstat(int(fd))
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _say(text: str) -> None:
    try:
        os.write(2, f"auxip logging: {text}\n".encode())
    except OSError:
        pass


_abandoned: list[subprocess.Popen[bytes]] = []
_writer: Writer | None = None
_writer_lock = threading.Lock()


def writer() -> Writer:
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = Writer()
        return _writer


def flush_all() -> None:
    """Write out every line queued so far (the CLI at the end of a command; a test, to read
    what was logged)."""
    if _writer is not None:
        _writer.call(Marker(Writer.flush))


def _stop() -> None:
    if _writer is not None:
        _writer.stop()


def _after_fork() -> None:
    if _writer is not None:
        _writer.forked()


atexit.register(_stop)
os.register_at_fork(after_in_child=_after_fork)
