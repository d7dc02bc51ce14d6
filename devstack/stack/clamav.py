"""A local clamd for the stack and the tests: its configuration and how to start it.

FOR LOCAL RUNS ONLY. No signature database can be downloaded on the development and CI
machines, and clamd refuses to start with none, so this writes a one-signature database
that detects the EICAR test string and nothing else. Production runs clamd with the real
database kept current by freshclam (the official clamav image does both): a clamd built
from this module protects against nothing.

Limits: ClamAV cannot scan a file over 2 GB (it clamps MaxFileSize to 2147483645 bytes).
With AlertExceedsMax, anything it cannot scan in full is reported as
`Heuristics.Limits.Exceeded.*`, which the client turns into ScanLimitExceeded (no verdict)
instead of the silent "OK" clamd would otherwise give.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import time
from pathlib import Path

from shared.adapters.virus_scan import ClamdScanner

CLAMD = Path("/usr/sbin/clamd")
CLAMAV_USER = "clamav"
TEST_DB_NAME = "auxip-local-eicar.ndb"  # ".ndb": extended signatures, hex body
TEST_SIGNATURE = "Eicar-Test-Signature-NDB"  # clamd reports it as "<name>.UNOFFICIAL"
UNIX_PATH_MAX = 107  # sun_path is 108 bytes, NUL included

# All in one place, so the client's timeout and the stack's file limits can be read here.
STREAM_MAX_LENGTH = "2000M"  # INSTREAM refuses more (ScanLimitExceeded)
MAX_FILE_SIZE = "2000M"  # ClamAV's own ceiling is 2 GB
MAX_SCAN_SIZE = "4000M"  # an archive counts once itself plus once per extracted member
MAX_SCAN_TIME_MS = 300_000


def _eicar() -> bytes:
    # Assembled from parts so that no file of the repository contains the test string.
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


def eicar_database_line() -> str:
    """target 0 (any file), offset * (anywhere), then the hex of the bytes to find."""
    return f"{TEST_SIGNATURE}:0:*:{_eicar().hex()}\n"


def _clamav_account() -> pwd.struct_passwd | None:
    """The account clamd drops to, when we are root (clamd only switches user from root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(CLAMAV_USER)
    except KeyError:
        raise RuntimeError(
            f"user {CLAMAV_USER!r} missing: install clamd with apt-get install -y clamav "
            "clamav-daemon"
        ) from None


def _check_traversable(path: Path, account: pwd.struct_passwd) -> None:
    """clamd opens its database, socket, pid and log files after dropping to `clamav`, so
    every folder above the workdir must let that user through."""
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for folder in path.parents:
        st = folder.stat()
        if st.st_uid == account.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise PermissionError(
                f"{folder} (mode {stat.S_IMODE(st.st_mode):o}) is not traversable by user "
                f"{account.pw_name!r}, whom clamd runs as: put the clamd workdir {path} "
                "elsewhere (e.g. under the stack's state folder or tempfile.mkdtemp())"
            )


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def config_text(workdir: Path, tcp_port: int, user: str | None) -> str:
    lines = [
        "# Local clamd for auxip, written by devstack/stack/clamav.py.",
        "# Test database (EICAR only): for local runs, never for production.",
        f"DatabaseDirectory {workdir / 'db'}",
        f"LocalSocket {workdir / 'clamd.sock'}",
        f"TCPSocket {tcp_port}",
        "TCPAddr 127.0.0.1",
        "Foreground yes",
        f"PidFile {workdir / 'clamd.pid'}",
        f"LogFile {workdir / 'clamd.log'}",
        "LogTime yes",
        f"TemporaryDirectory {workdir / 'tmp'}",
        f"StreamMaxLength {STREAM_MAX_LENGTH}",
        f"MaxFileSize {MAX_FILE_SIZE}",
        f"MaxScanSize {MAX_SCAN_SIZE}",
        f"MaxScanTime {MAX_SCAN_TIME_MS}",
        # Without it, content over a limit is skipped and reported clean.
        "AlertExceedsMax yes",
    ]
    if user:
        lines.append(f"User {user}")
    return "\n".join(lines) + "\n"


def write_config(workdir: Path, tcp_port: int) -> Path:
    """Create `workdir/db` (the EICAR-only database) and `workdir/clamd.conf`; return the
    conf path. Idempotent. As root, the workdir is handed to user clamav."""
    workdir = Path(workdir).resolve()
    socket_path = workdir / "clamd.sock"
    if len(os.fsencode(socket_path)) > UNIX_PATH_MAX:
        raise ValueError(f"clamd socket path too long for a Unix socket: {socket_path}")
    account = _clamav_account()
    if account is not None:
        _check_traversable(workdir, account)
    db = workdir / "db"
    for folder in (workdir, db, workdir / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    _write_if_changed(db / TEST_DB_NAME, eicar_database_line())
    conf = workdir / "clamd.conf"
    _write_if_changed(conf, config_text(workdir, tcp_port, account.pw_name if account else None))
    if account is not None:
        for p in (workdir, db, db / TEST_DB_NAME, workdir / "tmp", conf):
            os.chown(p, account.pw_uid, account.pw_gid)
        workdir.chmod(0o755)
        (workdir / "tmp").chmod(0o700)
    return conf


def clamd_argv(conf: Path) -> list[str]:
    """How to run clamd in the foreground (the config says `Foreground yes`)."""
    clamd = str(CLAMD) if CLAMD.exists() else shutil.which("clamd")
    if clamd is None:
        raise FileNotFoundError(
            f"clamd not found at {CLAMD} nor on PATH: apt-get install -y clamav clamav-daemon"
        )
    return [clamd, "--config-file", str(conf)]


def wait_ready(host: str, port: int, timeout: float = 30.0) -> None:
    """Until clamd answers PING with PONG (it is ready ~0.1 s after start with the test
    database; the real database takes tens of seconds). TimeoutError after `timeout`."""
    scanner = ClamdScanner(host=host, port=port, timeout=2.0)
    deadline = time.monotonic() + timeout
    while True:
        if scanner.ping():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"clamd at {host}:{port} not answering PING after {timeout:g} s")
        time.sleep(0.05)
