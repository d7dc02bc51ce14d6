"""`$value` served by prip under gunicorn (functions-framework, as in production), where a
large body is relayed from the S3 connection to the client's by splice(2): the exact bytes
(whole, a range, one keep-alive connection after another), a client that goes away
mid-way (its slot back, its S3 connection closed, no error logged) and an S3 connection
that breaks mid-way (the client sees a short body, the download is audited as failed).
The same checks of the bytes run with AUXIP_DOWNLOAD_ZERO_COPY=false (1 MiB chunks)."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from shared.prip import downloads
from tests.prip.catalogue import BIG, BIG_SIZE, BY_NUMBER, audit_rows, last_audit_id, pid
from tests.prip.conftest import MAX_PARALLEL, REPO

pytestmark = pytest.mark.usefixtures("seeded")

MiB = 1024**2
CUT_AFTER = 10 * MiB  # the breaking proxy cuts an S3 connection past this many bytes


def value_path(number: int) -> str:
    return f"odata/v1/Products({pid(number)})/$value"


@dataclass
class Gunicorn:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        """The master and its workers."""
        found = [self.process.pid]
        for parent in found:
            with open(f"/proc/{parent}/task/{parent}/children") as children:
                found += [int(p) for p in children.read().split()]
        return found

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(function_env: dict[str, str], name: str, **env: str) -> Gunicorn:
    port = _free_port()
    log = Path(function_env.get("AUXIP_STATE_DIR", "/tmp")) / f"prip-{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "functions-framework"), "--target", "handle",
             "--source", str(REPO / "functions" / "prip" / "main.py"),
             "--host", "127.0.0.1", "--port", str(port)],
            env={**function_env, **env}, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    served = Gunicorn(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{served.base}/odata/v1", timeout=1)
            return served
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(served)
                pytest.fail(f"prip ({name}) did not start:\n{served.log_text()[-2000:]}")
            time.sleep(0.1)


def _stop(served: Gunicorn) -> None:
    served.process.terminate()
    served.process.wait(timeout=10)


@pytest.fixture(scope="module", params=["zero-copy", "chunks"])
def served(request, function_env) -> Iterator[Gunicorn]:
    mode = request.param
    running = _start(function_env, mode,
                     AUXIP_DOWNLOAD_ZERO_COPY=str(mode == "zero-copy").lower())
    yield running
    _stop(running)


@pytest.fixture(scope="module")
def zero_copy(function_env) -> Iterator[Gunicorn]:
    running = _start(function_env, "zero-copy-only")
    yield running
    _stop(running)


def _get(api, served: Gunicorn, number: int, client: httpx.Client | None = None,
         **headers: str) -> httpx.Response:
    return (client or api.http).get(f"{served.base}/{value_path(number)}",
                                    headers=api.headers("alice", headers))


def _s3_connections(served: Gunicorn, s3_port: int) -> int:
    """Established TCP connections of the prip processes to the S3 server."""
    inodes: set[str] = set()
    for process in served.pids():
        for fd in Path(f"/proc/{process}/fd").iterdir():
            with_inode = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if with_inode:
                inodes.add(with_inode.group(1))
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == s3_port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


def _settle(settings) -> None:
    """Wait until no download's audit row is still to come (a stream's row is written when
    the server closes it, just after the client got its end)."""
    deadline = time.monotonic() + 30
    seen = last_audit_id(settings)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = last_audit_id(settings)
        if now == seen:
            return
        seen = now


# --- the bytes ------------------------------------------------------------------------------


def test_the_exact_bytes_whole_and_ranged(api, settings, served):
    big = BY_NUMBER[BIG].data()
    assert BIG_SIZE >= downloads.ZERO_COPY_MIN  # large enough to be relayed
    _settle(settings)
    before = last_audit_id(settings)
    with httpx.Client(timeout=60) as one_connection:  # keep-alive: framing must hold
        for _ in range(2):
            whole = _get(api, served, BIG, one_connection)
            assert whole.status_code == 200
            assert whole.headers["Content-Length"] == str(BIG_SIZE)
            assert hashlib.md5(whole.content).digest() == hashlib.md5(big).digest()
        first, last = 12345, 12345 + downloads.ZERO_COPY_MIN + 99
        ranged = _get(api, served, BIG, one_connection, Range=f"bytes={first}-{last}")
        assert ranged.status_code == 206
        assert ranged.headers["Content-Range"] == f"bytes {first}-{last}/{BIG_SIZE}"
        assert ranged.content == big[first:last + 1]
        small = _get(api, served, 3, one_connection)  # below the floor: chunks
        assert small.status_code == 200 and small.content == BY_NUMBER[3].data()
    rows = audit_rows(settings, actor="alice", since_id=before, wait_for=4)
    assert [(r["outcome"], r["bytes_sent"]) for r in rows] == [
        ("completed", BIG_SIZE), ("completed", BIG_SIZE),
        ("partial", last - first + 1), ("completed", BY_NUMBER[3].size)]


def test_a_relayed_body_closes_its_s3_connection_chunks_pool_theirs(api, settings, served):
    """How to tell the two paths apart from outside: after a relay the S3 client no longer
    knows where the body ended, so that connection is closed, not pooled."""
    s3_port = urlsplit(settings.s3_endpoint).port
    before = last_audit_id(settings)
    assert _get(api, served, 3).status_code == 200  # a small one: pooled either way
    audit_rows(settings, actor="alice", since_id=before, wait_for=1)  # its stream closed
    pooled = _s3_connections(served, s3_port)
    assert pooled >= 1
    big = _get(api, served, BIG)  # takes the pooled connection
    assert big.status_code == 200 and len(big.content) == BIG_SIZE
    audit_rows(settings, actor="alice", since_id=before, wait_for=2)  # its stream closed
    relayed = served.log.name == "prip-zero-copy.log"
    assert _s3_connections(served, s3_port) == (pooled - 1 if relayed else pooled)


# --- a client that goes away ----------------------------------------------------------------


def _walk_away(api, served: Gunicorn, number: int) -> int:
    """A GET whose client reads the headers and some of the body, then resets the
    connection; the body bytes it got."""
    host, port = urlsplit(served.base).hostname, urlsplit(served.base).port
    with socket.create_connection((host, port), timeout=30) as client:
        token = api.issuer.token("alice")
        client.sendall(f"GET /{value_path(number)} HTTP/1.1\r\nHost: {host}\r\n"
                       f"Authorization: Bearer {token}\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got or len(got) < 2 * MiB:
            chunk = client.recv(MiB)
            assert chunk, got[:300]
            got += chunk
        assert got.startswith(b"HTTP/1.1 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01" + b"\x00" * 7)
    return len(got.partition(b"\r\n\r\n")[2])


def test_a_client_that_goes_away_frees_its_slot_and_its_s3_connection(api, settings,
                                                                      zero_copy):
    s3_port = urlsplit(settings.s3_endpoint).port
    warm = _get(api, zero_copy, 3)  # one pooled S3 connection, kept by the plain path
    assert warm.status_code == 200
    _settle(settings)
    pooled = _s3_connections(zero_copy, s3_port)
    before = last_audit_id(settings)
    for _ in range(MAX_PARALLEL + 1):  # more than the quota: each slot came back
        _walk_away(api, zero_copy, BIG)
    rows = audit_rows(settings, actor="alice", since_id=before, wait_for=MAX_PARALLEL + 1)
    assert [r["outcome"] for r in rows] == ["aborted"] * (MAX_PARALLEL + 1)
    assert all(0 < r["bytes_sent"] < BIG_SIZE for r in rows)
    assert _s3_connections(zero_copy, s3_port) <= pooled  # none left half read
    after = _get(api, zero_copy, BIG)
    assert after.status_code == 200 and len(after.content) == BIG_SIZE
    _settle(settings)
    log = zero_copy.log_text()
    assert "Traceback" not in log and "ERROR" not in log.upper().replace("_ERROR", ""), log


# --- an S3 connection that breaks -----------------------------------------------------------


class BreakingProxy:
    """A TCP proxy to the S3 server that cuts a connection once it carried CUT_AFTER
    bytes of answers: a network failure in the middle of a body."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(near, far, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(far, near, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        carried = 0
        try:
            while chunk := source.recv(256 * 1024):
                sink.sendall(chunk)
                carried += len(chunk)
                if answers and carried > CUT_AFTER:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def breaking(settings, function_env) -> Iterator[tuple[Gunicorn, BreakingProxy]]:
    parts = urlsplit(settings.s3_endpoint)
    proxy = BreakingProxy((parts.hostname, parts.port))
    running = _start(function_env, "breaking-s3", AUXIP_S3_ENDPOINT=proxy.endpoint)
    yield running, proxy
    _stop(running)
    proxy.close()


def test_an_s3_connection_that_breaks_gives_a_short_body_and_a_failed_download(
        api, settings, breaking):
    served, proxy = breaking
    _settle(settings)
    before = last_audit_id(settings)
    got = 0
    with pytest.raises(httpx.RemoteProtocolError):  # the body ends short of Content-Length
        with api.http.stream("GET", f"{served.base}/{value_path(BIG)}",
                             headers=api.headers("alice")) as answer:
            assert answer.status_code == 200
            assert answer.headers["Content-Length"] == str(BIG_SIZE)
            for chunk in answer.iter_raw():
                got += len(chunk)
    assert proxy.cuts == 1
    assert 0 < got < BIG_SIZE
    rows = audit_rows(settings, actor="alice", since_id=before, wait_for=1)
    assert [r["outcome"] for r in rows] == ["failed"]
    assert rows[0]["bytes_sent"] == got
    assert served.log_text().count("archive read failed") == 1
    # The slot came back and the process serves on.
    small = _get(api, served, 3)
    assert small.status_code == 200 and small.content == BY_NUMBER[3].data()
    _settle(settings)
