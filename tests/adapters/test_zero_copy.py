"""shared.adapters.zero_copy over real loopback TCP connections, and storage.take_socket on
GETs from the test stack's Ceph RGW: the exact bytes, and each end's failure told apart."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.settings import StackSettings
from shared.adapters import storage, zero_copy

MiB = 1024**2
KEY = "test-zero-copy/object.bin"


def _pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname())
        far, _ = listener.accept()
    return near, far


def _send(sock: socket.socket, data: bytes, *, close: bool = True) -> threading.Thread:
    def run() -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass
        if close:
            sock.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read_all(sock: socket.socket, into: bytearray) -> threading.Thread:
    def run() -> None:
        while chunk := sock.recv(MiB):
            into.extend(chunk)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def relay_ends() -> Iterator[tuple[socket.socket, socket.socket, socket.socket, socket.socket]]:
    """(writer, source, destination, reader): writer -> source and destination -> reader."""
    writer, source = _pair()
    destination, reader = _pair()
    for sock in (writer, source, destination, reader):
        sock.settimeout(30)  # a test that goes wrong fails rather than hangs
    yield writer, source, destination, reader
    for sock in (writer, source, destination, reader):
        sock.close()


def test_splice_is_found_usable_on_this_linux():
    assert zero_copy.available()


def test_the_exact_bytes_arrive_and_what_follows_them_stays(relay_ends):
    writer, source, destination, reader = relay_ends
    data = os.urandom(5 * MiB + 123)
    _send(writer, data + b"NEXT", close=False)
    got = bytearray()
    reading = _read_all(reader, got)
    relay = zero_copy.Relay(source, destination)
    relay.run(len(data))
    assert relay.sent == len(data)
    destination.shutdown(socket.SHUT_WR)
    reading.join(10)
    assert hashlib.md5(got).digest() == hashlib.md5(data).digest()
    # Not one byte past the count is taken: the source's next message is intact.
    source.settimeout(5)
    assert source.recv(10) == b"NEXT"


def test_a_source_that_ends_early_is_a_source_failure(relay_ends):
    writer, source, destination, reader = relay_ends
    _send(writer, os.urandom(3 * MiB))
    got = bytearray()
    reading = _read_all(reader, got)
    relay = zero_copy.Relay(source, destination)
    with pytest.raises(zero_copy.SourceFailed, match="bytes early"):
        relay.run(4 * MiB)
    assert relay.sent == 3 * MiB
    destination.shutdown(socket.SHUT_WR)
    reading.join(10)
    assert len(got) == 3 * MiB


def test_a_silent_source_times_out_as_a_source_failure(relay_ends):
    _, source, destination, _ = relay_ends
    source.settimeout(0.2)
    with pytest.raises(zero_copy.SourceFailed, match="not ready"):
        zero_copy.Relay(source, destination).run(MiB)


def test_a_destination_that_goes_away_raises_its_own_socket_error(relay_ends):
    writer, source, destination, reader = relay_ends
    sending = _send(writer, os.urandom(64 * MiB))

    def read_some_then_reset() -> None:
        got = 0
        while got < 2 * MiB:
            got += len(reader.recv(MiB))
        # Linger 0: the close resets the connection, as a client that is killed.
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01" + b"\x00" * 7)
        reader.close()

    resetting = threading.Thread(target=read_some_then_reset, daemon=True)
    resetting.start()
    relay = zero_copy.Relay(source, destination)
    with pytest.raises(OSError) as raised:
        relay.run(64 * MiB)
    assert not isinstance(raised.value, zero_copy.SourceFailed)
    assert raised.value.errno in (errno.EPIPE, errno.ECONNRESET)
    assert 2 * MiB <= relay.sent < 64 * MiB
    resetting.join(10)
    source.close()
    sending.join(10)


# --- the socket of an S3 GET ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(settings: StackSettings, s3: Any) -> Iterator[bytes]:
    data = os.urandom(3 * MiB + 7)
    storage.put_bytes(s3, settings.archive_bucket, KEY, data)
    yield data
    storage.delete(s3, settings.archive_bucket, KEY)


def test_take_socket_gives_the_body_from_the_socket(settings, s3, stored):
    answer = s3.get_object(Bucket=settings.archive_bucket, Key=KEY, Range="bytes=5-")
    body = answer["Body"]
    unread = storage.take_socket(body)
    assert unread is not None
    assert 0 < len(unread.first) <= storage.UNREAD_FIRST
    assert len(unread.first) + unread.left == len(stored) - 5
    rest = bytearray()
    unread.sock.settimeout(10)
    while len(rest) < unread.left:
        chunk = unread.sock.recv(MiB)
        assert chunk
        rest += chunk
    assert unread.first + rest == stored[5:]
    body.close()


def test_take_socket_refuses_a_body_already_read_from(settings, s3, stored):
    body = s3.get_object(Bucket=settings.archive_bucket, Key=KEY)["Body"]
    body.read(10)
    assert storage.take_socket(body) is None
    assert body.read() == stored[10:]  # the ordinary reader carries on
