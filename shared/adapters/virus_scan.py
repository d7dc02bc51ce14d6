"""A small client for clamd's INSTREAM command.

No third-party client: the PyPI ones are unmaintained. The protocol is four lines of code:
`zINSTREAM\\0`, then chunks each prefixed by its length (4 bytes, big-endian), a zero
length to finish, and one NUL-terminated reply:

    stream: OK                      -> clean
    stream: <signature> FOUND       -> infected
    INSTREAM size limit exceeded. ERROR, '... ERROR', nothing at all -> ScanUnavailable

Only a well-formed verdict becomes a ScanResult. Everything else (scanner down, timeout,
protocol surprise, limits exceeded) raises ScanUnavailable, so that the caller retries the
event: a scanner problem must never turn into a false accept or a false reject.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# clamd with AlertExceedsMax reports content it did not fully scan under this prefix: that
# is "could not judge", not a virus.
LIMITS_EXCEEDED_PREFIX = "Heuristics.Limits.Exceeded"
_MAX_REPLY = 64 * 1024


class ScanUnavailable(Exception):
    """No verdict: retry later (never reject or accept on this)."""


class ScanLimitExceeded(ScanUnavailable):
    """clamd refused or could not fully scan this content (StreamMaxLength, MaxFileSize,
    MaxScanSize, MaxScanTime...). Retrying will not help until its limits are raised."""


@dataclass(frozen=True)
class ScanResult:
    clean: bool
    signature: str | None = None


def parse_reply(reply: bytes) -> ScanResult:
    """A verdict from clamd's reply to zINSTREAM (trailing NUL optional)."""
    text = reply.rstrip(b"\0").decode("utf-8", errors="replace").strip()
    if text == "stream: OK":
        return ScanResult(clean=True)
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        signature = text[len("stream: ") : -len(" FOUND")].strip()
        if signature.startswith(LIMITS_EXCEEDED_PREFIX):
            raise ScanLimitExceeded(f"clamd could not scan everything: {signature}")
        if signature:
            return ScanResult(clean=False, signature=signature)
    if "size limit exceeded" in text:
        raise ScanLimitExceeded(f"clamd: {text}")
    raise ScanUnavailable(f"unexpected clamd reply: {text!r}")


class ClamdScanner:
    """One connection per scan (clamd serves each on its own thread). Connect over TCP
    (`host`, `port`) or a Unix socket (`unix_socket`). `timeout` bounds every socket
    operation, including the wait for the verdict: it must exceed clamd's MaxScanTime for
    the largest file."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        unix_socket: str | None = None,
        timeout: float = 60.0,
        chunk_size: int = 1024 * 1024,
    ) -> None:
        if (unix_socket is None) == (host is None or port is None):
            raise ValueError("give either host and port, or unix_socket")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.host = host
        self.port = port
        self.unix_socket = unix_socket
        self.timeout = timeout
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"ClamdScanner({where})"

    def _connect(self) -> socket.socket:
        try:
            if self.unix_socket is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(self.unix_socket)
                except BaseException:
                    sock.close()
                    raise
                return sock
            assert self.host is not None and self.port is not None
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            # The zero-length terminator is tiny: do not let it wait for a delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as e:
            raise ScanUnavailable(f"cannot reach clamd at {self!r}: {e}") from e

    def ping(self) -> bool:
        try:
            with self._connect() as sock:
                sock.sendall(b"zPING\0")
                return _read_reply(sock) == b"PONG"
        except (OSError, ScanUnavailable):
            return False

    def open_stream(self) -> ScanSession:
        """An INSTREAM session to feed chunk by chunk, for callers that hand each chunk to
        several consumers (checksums, upload, scan) in one loop."""
        return ScanSession(self._connect(), self.chunk_size, repr(self))

    def scan_stream(self, chunks: Iterable[bytes]) -> ScanResult:
        """Scan the concatenation of `chunks` (any sizes; empty ones are skipped).
        Exceptions raised by the iterable itself propagate unchanged."""
        with self.open_stream() as session:
            for chunk in chunks:
                session.send(chunk)
            return session.finish()

    def scan_file(self, path: Path) -> ScanResult:
        with open(path, "rb") as f:
            return self.scan_stream(iter(lambda: f.read(self.chunk_size), b""))


class ScanSession:
    def __init__(self, sock: socket.socket, chunk_size: int, where: str) -> None:
        self._sock = sock
        self._chunk_size = chunk_size
        self._where = where
        self.sent = 0
        try:
            sock.sendall(b"zINSTREAM\0")
        except OSError as e:
            sock.close()
            raise ScanUnavailable(f"{where}: INSTREAM failed to start: {e}") from e

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        # A zero-length chunk is the end-of-stream marker: never send an empty one here.
        for start in range(0, len(view), self._chunk_size):
            piece = view[start : start + self._chunk_size]
            try:
                # One write per chunk: a separate 4-byte write would meet Nagle's algorithm.
                self._sock.sendall(struct.pack(">I", len(piece)) + piece)
            except OSError as e:
                # clamd closes the connection once StreamMaxLength is reached, after saying
                # so: prefer its explanation to the broken pipe.
                raise self._why_closed(e) from e
            self.sent += len(piece)

    def finish(self) -> ScanResult:
        try:
            self._sock.sendall(struct.pack(">I", 0))
        except OSError as e:
            raise self._why_closed(e) from e
        try:
            reply = _read_reply(self._sock)
        except OSError as e:
            raise ScanUnavailable(f"{self._where}: no verdict after {self.sent} bytes: {e}") from e
        finally:
            self.close()
        return parse_reply(reply)

    def _why_closed(self, error: OSError) -> ScanUnavailable:
        try:
            self._sock.settimeout(1.0)
            reply = _read_reply(self._sock)
        except (OSError, ScanUnavailable):
            reply = b""
        finally:
            self.close()
        if reply:
            try:
                parse_reply(reply)
            except ScanUnavailable as reason:
                return reason
        return ScanUnavailable(f"{self._where}: connection lost after {self.sent} bytes: {error}")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ScanSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_reply(sock: socket.socket) -> bytes:
    """Bytes up to the terminating NUL. A connection closed before it is no reply."""
    buf = bytearray()
    while not buf.endswith(b"\0"):
        data = sock.recv(4096)
        if not data:
            raise ScanUnavailable(f"clamd closed the connection mid-reply: {bytes(buf)!r}")
        buf += data
        if len(buf) > _MAX_REPLY:
            raise ScanUnavailable("clamd reply too long")
    return bytes(buf[:-1])
