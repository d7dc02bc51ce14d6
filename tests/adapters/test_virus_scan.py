import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.stack import clamav
from shared.adapters.virus_scan import (
    ClamdScanner,
    ScanLimitExceeded,
    ScanResult,
    ScanUnavailable,
    parse_reply,
)
from tests.core import hostile

EICAR = hostile.eicar_bytes()
EICAR_FOUND = "Eicar-Test-Signature-NDB.UNOFFICIAL"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Clamd:
    port: int
    unix_socket: str
    workdir: Path

    def scanner(self, **kwargs) -> ClamdScanner:
        return ClamdScanner(host=HOST, port=self.port, timeout=30, **kwargs)


@contextmanager
def start_clamd(edit: Callable[[str], str] | None = None) -> Iterator[Clamd]:
    """A real clamd, configured by devstack.stack.clamav, stopped (and waited for) afterwards."""
    if not clamav.CLAMD.exists() and shutil.which("clamd") is None:
        pytest.fail(
            f"clamd is not installed ({clamav.CLAMD} missing): these tests need a real clamd; "
            "install it with `apt-get install -y clamav clamav-daemon` (CI does)"
        )
    # Not pytest's tmp_path: it sits under a 0700 folder that user clamav cannot traverse.
    workdir = Path(tempfile.mkdtemp(prefix="auxip-clamd-"))
    port = free_port()
    conf = clamav.write_config(workdir, port)
    if edit is not None:
        conf.write_text(edit(conf.read_text()))
    output = open(workdir / "clamd.out", "wb")
    proc = subprocess.Popen(
        clamav.clamd_argv(conf), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
    )
    try:
        try:
            clamav.wait_ready(HOST, port, timeout=30)
        except TimeoutError:
            proc.terminate()
            proc.wait(10)
            pytest.fail(f"clamd did not start:\n{(workdir / 'clamd.out').read_text()}")
        yield Clamd(port=port, unix_socket=str(workdir / "clamd.sock"), workdir=workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()
        shutil.rmtree(workdir, ignore_errors=True)
        assert proc.returncode is not None


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    with start_clamd() as running:
        yield running


# --- against a real clamd --------------------------------------------------------------------


def test_ping(clamd: Clamd) -> None:
    assert clamd.scanner().ping()
    assert ClamdScanner(unix_socket=clamd.unix_socket).ping()


def test_eicar_found_in_several_small_chunks(clamd: Clamd) -> None:
    chunks = [EICAR[i : i + 5] for i in range(0, len(EICAR), 5)]
    assert len(chunks) > 10
    assert clamd.scanner().scan_stream(chunks) == ScanResult(clean=False, signature=EICAR_FOUND)


@pytest.mark.parametrize("split", [1, 17, 34, 67])
def test_eicar_split_across_chunk_boundaries(clamd: Clamd, split: int) -> None:
    data = b"<xml>" * 1000 + EICAR + b"</xml>" * 1000
    at = 5000 + split
    chunks = [data[:at], b"", data[at:]]  # an empty chunk must not end the stream early
    result = clamd.scanner().scan_stream(chunks)
    assert not result.clean and result.signature == EICAR_FOUND


def test_scanner_rechunks_large_input(clamd: Clamd) -> None:
    data = os.urandom(300_000) + EICAR + os.urandom(1000)
    # 7-byte frames: EICAR falls across ten of them
    result = clamd.scanner(chunk_size=7).scan_stream([data[:150_000], data[150_000:]])
    assert result.signature == EICAR_FOUND


def test_clean_data_is_ok(clamd: Clamd) -> None:
    assert clamd.scanner().scan_stream([b"<clean/>"]) == ScanResult(clean=True, signature=None)
    data = os.urandom(8 * 1024 * 1024)
    chunks = (data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000))
    assert clamd.scanner().scan_stream(chunks).clean
    assert clamd.scanner().scan_stream([]).clean  # an empty file


def test_scan_file_and_archives(clamd: Clamd, tmp_path: Path) -> None:
    scanner = ClamdScanner(unix_socket=clamd.unix_socket, timeout=30)
    (tmp_path / "e.txt").write_bytes(EICAR)
    assert scanner.scan_file(tmp_path / "e.txt").signature == EICAR_FOUND
    # clamd looks inside archives: a SAFE zip or tgz carrying the test string is caught
    files = {**hostile.synthetic_safe_files(), "data/s1a-aux-cal.xml": EICAR}
    for path in (
        hostile.safe_zip(tmp_path / "p.zip", files),
        hostile.safe_tar(tmp_path / "p.tgz", files),
    ):
        assert scanner.scan_file(path).signature == EICAR_FOUND
    clean = hostile.safe_zip(tmp_path / "clean.zip", hostile.sample_safe_files())
    assert scanner.scan_file(clean).clean


def test_error_in_the_source_propagates_unchanged(clamd: Clamd) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("S3 read failed")

    with pytest.raises(RuntimeError, match="S3 read failed"):
        clamd.scanner().scan_stream(chunks())
    assert clamd.scanner().ping()  # clamd is fine with the abandoned stream


def test_session_api(clamd: Clamd) -> None:
    with clamd.scanner().open_stream() as session:
        for i in range(0, len(EICAR), 3):
            session.send(EICAR[i : i + 3])
        assert session.finish().signature == EICAR_FOUND


def test_closed_port_is_unavailable() -> None:
    scanner = ClamdScanner(host=HOST, port=free_port(), timeout=2)
    assert not scanner.ping()
    with pytest.raises(ScanUnavailable):
        scanner.scan_stream([EICAR])
    with pytest.raises(ScanUnavailable):
        ClamdScanner(unix_socket="/nonexistent/clamd.sock").scan_stream([b"x"])


def test_over_clamd_limits_is_no_verdict() -> None:
    def small_limits(conf: str) -> str:
        for key, value in (("StreamMaxLength", "1M"), ("MaxFileSize", "100K")):
            conf = conf.replace(f"{key} {getattr(clamav, _CONSTANTS[key])}", f"{key} {value}")
        return conf

    with start_clamd(small_limits) as small:
        scanner = small.scanner()
        # over MaxFileSize: clamd would say OK without AlertExceedsMax
        with pytest.raises(ScanLimitExceeded, match="MaxFileSize"):
            scanner.scan_stream([bytes(500_000)])
        # over StreamMaxLength: clamd says so and hangs up mid-stream
        with pytest.raises(ScanUnavailable):
            scanner.scan_stream([os.urandom(256 * 1024)] * 32)
        assert scanner.scan_stream([EICAR]).signature == EICAR_FOUND


_CONSTANTS = {"StreamMaxLength": "STREAM_MAX_LENGTH", "MaxFileSize": "MAX_FILE_SIZE"}


# --- configuration -----------------------------------------------------------------------------


def test_write_config_is_idempotent() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="auxip-clamd-conf-"))
    try:
        conf = clamav.write_config(workdir, 3310)
        first = conf.read_text()
        assert clamav.write_config(workdir, 3310) == conf and conf.read_text() == first
        assert "TCPSocket 3310\n" in first and "Foreground yes\n" in first
        assert "AlertExceedsMax yes\n" in first
        db = workdir.resolve() / "db" / clamav.TEST_DB_NAME
        assert db.read_text() == f"Eicar-Test-Signature-NDB:0:*:{EICAR.hex()}\n"
        if os.geteuid() == 0:
            assert "User clamav\n" in first
            assert db.stat().st_uid == clamav.pwd.getpwnam("clamav").pw_uid
        else:
            assert "User " not in first
        assert clamav.clamd_argv(conf)[1:] == ["--config-file", str(conf)]
    finally:
        shutil.rmtree(workdir)


def test_workdir_clamav_cannot_reach_is_refused_clearly(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    if os.geteuid() == 0:
        with pytest.raises(PermissionError, match="not traversable by user 'clamav'"):
            clamav.write_config(locked / "clamd", 3310)
    else:  # clamd keeps our user: no constraint
        clamav.write_config(locked / "clamd", 3310)


def test_socket_path_too_long_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="too long"):
        clamav.write_config(Path("/tmp") / ("x" * 120), 3310)


# --- protocol details, against a fake clamd -------------------------------------------------------


class FakeClamd:
    """Accepts one connection, records what it receives, answers with `reply`."""

    def __init__(self, reply: bytes | None, read_all: bool = True, delay_close: float = 0) -> None:
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.received = b""
        self.reply = reply
        self.read_all = read_all
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.settimeout(5)
            if self.read_all:
                while not self.received.endswith(b"\0\0\0\0"):
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.received += data
            if self.reply is not None:
                conn.sendall(self.reply)
            else:
                self.done.wait(5)  # never answer

    def frames(self) -> list[bytes]:
        assert self.received.startswith(b"zINSTREAM\0")
        data, out = self.received[len(b"zINSTREAM\0") :], []
        while True:
            (n,) = struct.unpack(">I", data[:4])
            if n == 0:
                assert data == b"\0\0\0\0"
                return out
            out.append(data[4 : 4 + n])
            data = data[4 + n :]

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.server.close()


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeClamd]]:
    made: list[FakeClamd] = []

    def make(*args, **kwargs) -> FakeClamd:
        made.append(FakeClamd(*args, **kwargs))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_framing(fake) -> None:
    server = fake(b"stream: OK\0")
    scanner = ClamdScanner(host=HOST, port=server.port, chunk_size=4)
    assert scanner.scan_stream([b"abcdefghij", b"", b"k"]).clean
    server.close()
    assert server.frames() == [b"abcd", b"efgh", b"ij", b"k"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"INSTREAM size limit exceeded. ERROR\0", ScanLimitExceeded),
        (b"stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND\0", ScanLimitExceeded),
        (b"stream: Can't allocate memory ERROR\0", ScanUnavailable),
        (b"UNKNOWN COMMAND\0", ScanUnavailable),
        (b"stream: OK", ScanUnavailable),  # closed before the terminating NUL
        (b"", ScanUnavailable),  # closed without a word
        (None, ScanUnavailable),  # never answers: the timeout
    ],
)
def test_anything_but_a_verdict_is_unavailable(fake, reply: bytes | None, error) -> None:
    server = fake(reply)
    scanner = ClamdScanner(host=HOST, port=server.port, timeout=0.5)
    with pytest.raises(error):
        scanner.scan_stream([EICAR])


def test_ping_wants_pong(fake) -> None:
    assert not ClamdScanner(host=HOST, port=fake(b"PANG\0", read_all=False).port).ping()
    assert ClamdScanner(host=HOST, port=fake(b"PONG\0", read_all=False).port).ping()


def test_parse_reply() -> None:
    assert parse_reply(b"stream: OK\0") == ScanResult(True, None)
    assert parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0") == ScanResult(
        False, "Win.Test.EICAR_HDB-1"
    )
    for bad in (b"stream:  FOUND", b"stream: OK OK", b"OK", b"stream: x ERROR"):
        with pytest.raises(ScanUnavailable):
            parse_reply(bad)


def test_constructor_wants_one_address() -> None:
    with pytest.raises(ValueError):
        ClamdScanner()
    with pytest.raises(ValueError):
        ClamdScanner(host=HOST, port=3310, unix_socket="/x")
    with pytest.raises(ValueError):
        ClamdScanner(host=HOST)
