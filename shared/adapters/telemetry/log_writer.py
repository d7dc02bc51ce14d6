"""The log writer process: formats the records a process logged into ECS lines and writes
them, so the process that serves requests spends no time (and no GIL) formatting.

    python -m shared.adapters.telemetry.log_writer   (started by telemetry.log_queue)

stdin: frames from the parent, each a 4-byte big-endian length then a marshal'ed
(kind, body): ("open", (channel, service, "fd" | "path", fd or path)), ("close", channel),
("records", [ecs_format.to_wire(...), ...]), ("flush", token). stdout: a "flush" is
answered with its token (4 bytes) once every line before it is written.
An `fd` output is a descriptor inherited from the parent (its stderr, a file it opened);
a `path` is opened here in append mode and reopened when logrotate moves it (as
logging's WatchedFileHandler does). Lines are written whole, several per write(2) up to
PIPE_BUF bytes, so lines from several processes sharing a pipe never interleave.

EOF on stdin (the parent exited, or was killed) -> everything read is written, then exit:
the writer never outlives its parent. SIGINT and SIGTERM are ignored for that reason: a
Ctrl-C or a stop signal to the process group must not lose the parent's last lines.
"""

from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import struct
import sys
from typing import Any

from shared.adapters.telemetry.ecs_format import EcsFormatter, LineTemplates, Wire, from_wire

HEADER = struct.Struct(">I")
TOKEN = struct.Struct(">I")


class Output:
    """Where one channel's lines go, and the formatter with its service name."""

    def __init__(self, service: str, kind: str, where: int | str) -> None:
        self.formatter = EcsFormatter(service)
        self.templates = LineTemplates(self.formatter)
        self.kind, self.where = kind, where
        self.identity: tuple[int, int] | None = None
        self.broken = False
        self.fd = where if isinstance(where, int) else self._open(where)

    def _open(self, path: str) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        stat = os.fstat(fd)
        self.identity = (stat.st_dev, stat.st_ino)
        return fd

    def _reopen_if_moved(self) -> None:
        assert isinstance(self.where, str)
        try:
            stat = os.stat(self.where)
            if (stat.st_dev, stat.st_ino) == self.identity:
                return
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = self._open(self.where)

    def write(self, items: list[Wire]) -> None:
        lines = []
        for item in items:
            try:
                line = self.templates.line(item)
                if line is None:
                    line = self.formatter.format(from_wire(item)[1])
                lines.append(line.encode("utf-8", "replace") + b"\n")
            except Exception as error:  # noqa: BLE001 - one bad record must not stop the others
                _complain(f"a record of {item[3]} could not be formatted: {error!r}")
        try:
            if self.kind == "path":
                self._reopen_if_moved()
            for chunk in _chunks(lines):
                _write_all(self.fd, chunk)
            self.broken = False
        except OSError as error:
            if not self.broken:  # say it once, not once per batch
                _complain(f"cannot write to {self.where}: {error}")
            self.broken = True

    def close(self) -> None:
        if self.kind == "path":
            os.close(self.fd)


def _chunks(lines: list[bytes]) -> list[bytes]:
    """Whole lines, joined up to PIPE_BUF bytes a write (atomic on a pipe)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > select.PIPE_BUF:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append(b"".join(current))
    return chunks


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _complain(text: str) -> None:
    try:
        os.write(2, f"auxip log writer: {text}\n".encode())
    except OSError:
        pass


def serve(frames: Any, acks: int) -> None:
    outputs: dict[int, Output] = {}
    while True:
        header = frames.read(HEADER.size)
        if len(header) < HEADER.size:
            break  # EOF: the parent is gone or done
        payload = frames.read(HEADER.unpack(header)[0])
        kind, body = marshal.loads(payload)  # nosec B302  # frames of its parent, on a private pipe
        if kind == "records":
            by_channel: dict[int, list[Wire]] = {}
            for item in body:
                by_channel.setdefault(item[0], []).append(item)
            for channel, items in by_channel.items():
                if channel in outputs:
                    outputs[channel].write(items)
        elif kind == "open":
            channel, service, where_kind, where = body
            if channel in outputs:
                outputs.pop(channel).close()
            try:
                outputs[channel] = Output(service, where_kind, where)
            except OSError as error:
                _complain(f"cannot open {where}: {error}")
        elif kind == "close":
            if body in outputs:
                outputs.pop(body).close()
        elif kind == "flush":
            os.write(acks, TOKEN.pack(body))
    for output in outputs.values():
        output.close()


NICENESS = 10


def main() -> int:
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    # Formatting is background work: where CPU is short, the requests' process goes first
    # (lines wait in the pipe and the queue meanwhile; past the queue's size, dropped).
    os.nice(NICENESS)
    # The records are rebuilt here: the thread, process and multiprocessing names of this
    # process are not theirs (their pid travels with them).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    serve(sys.stdin.buffer, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
