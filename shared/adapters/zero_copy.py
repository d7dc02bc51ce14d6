"""A relay of a known number of bytes from one TCP socket to another that never brings
them into the process: Linux splice(2) through a pipe moves them from the source's receive
queue to the destination's send queue as references to the kernel's pages.

Why: relaying a download through user memory costs two copies per byte (recv into a
buffer, send out of it) plus a Python object per chunk; on a loaded machine that CPU is
taken from the client and the S3 server. Used only where both ends are plain TCP sockets
(no TLS: encrypted bytes must pass through user space to be decrypted).

The two ends fail differently, and the caller must tell them apart: the source ending or
failing early raises SourceFailed (not an OSError: a WSGI server must not take it for the
client going away); the destination failing raises its own OSError (EPIPE, ECONNRESET, a
timeout), as a send on it would. `Relay.sent` says how many bytes reached the destination
either way.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import select
import socket

# Linux caps an unprivileged pipe at /proc/sys/fs/pipe-max-size (1 MiB by default); a
# larger pipe means fewer splice calls per MiB. The kernel's default (64 KiB) if refused.
PIPE_SIZE = 1024 * 1024


@functools.cache
def available() -> bool:
    """splice(2) exists here and is allowed (a container's seccomp filter may refuse it):
    tried once, both ways, on a socket pair, so that a refusal is found before a response
    has started rather than in the middle of one."""
    if not (hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")):
        return False
    near, far = socket.socketpair()
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        near.sendall(b"x")
        os.splice(far.fileno(), write_end, 1)
        os.splice(read_end, far.fileno(), 1)
        return near.recv(1) == b"x"
    except OSError:
        return False
    finally:
        for sock in (near, far):
            sock.close()
        os.close(read_end)
        os.close(write_end)


class SourceFailed(Exception):
    """The source ended, failed or timed out before the count was relayed."""


class Relay:
    """Moves bytes from `source` to `destination`; `sent` counts what the destination
    took. The sockets' timeouts apply (None: wait as long as it takes)."""

    def __init__(self, source: socket.socket, destination: socket.socket) -> None:
        self._source = source
        self._destination = destination
        self.sent = 0

    def run(self, count: int) -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
            left = count
            while left:
                # The pipe is empty here: the source's splice always finds room.
                try:
                    taken = _splice(self._source, write_end, min(left, capacity),
                                    select.POLLIN, 0)
                except OSError as error:
                    raise SourceFailed(f"reading the source: {error}") from error
                if taken == 0:
                    raise SourceFailed(f"the source ended {left} bytes early")
                left -= taken
                more = os.SPLICE_F_MORE if left else 0  # the last piece goes out at once
                while taken:
                    moved = _splice(self._destination, read_end, taken, select.POLLOUT,
                                    more, into_socket=True)
                    taken -= moved
                    self.sent += moved
        finally:
            os.close(read_end)
            os.close(write_end)


def _splice(sock: socket.socket, pipe_end: int, count: int, event: int, flags: int, *,
            into_socket: bool = False) -> int:
    """One splice between `sock` and a pipe end, waiting (poll) while a non-blocking
    socket is not ready, up to the socket's timeout."""
    while True:
        try:
            if into_socket:
                return os.splice(pipe_end, sock.fileno(), count, flags=flags)
            return os.splice(sock.fileno(), pipe_end, count, flags=flags)
        except BlockingIOError:
            _wait(sock, event)


def _wait(sock: socket.socket, event: int) -> None:
    timeout = sock.gettimeout()
    poller = select.poll()
    poller.register(sock.fileno(), event)
    if not poller.poll(None if timeout is None else timeout * 1000):
        raise TimeoutError(f"socket not ready in {timeout} s")
