"""The catalogue's PostgreSQL for the local stack.

Preference order: a private cluster this stack already runs; the server of the configured
AUXIP_DATABASE_URL when it answers; the machine's own Debian cluster on that port, started
with pg_ctlcluster; else a private cluster (normally `<state>/postgres`) on
Layout.postgres_port.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from devstack.stack import processes

NAME = "postgres"


class PostgresError(RuntimeError):
    pass


def _admin_url(url: str) -> str:
    return conninfo.make_conninfo(url, dbname="postgres", connect_timeout=3)


def reachable(url: str) -> bool:
    """True when the server of `url` accepts connections (the database may not exist yet)."""
    try:
        psycopg.connect(_admin_url(url)).close()
        return True
    except psycopg.OperationalError:
        return False


def _wait(url: str, timeout: float, state: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable(url):
            return
        if state is not None and not processes.is_alive(state, NAME):
            break
        time.sleep(0.1)
    detail = tail(state) if state is not None else ""
    raise PostgresError(f"PostgreSQL at {_safe(url)} not answering after {timeout:.0f} s{detail}")


def _safe(url: str) -> str:
    info = conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return f"{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _is_local(url: str) -> bool:
    host = conninfo.conninfo_to_dict(url).get("host", "localhost")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("/")


def _start_system_cluster(url: str) -> bool:
    """Start the Debian cluster listening on the URL's port, if there is one (root only)."""
    if not _is_local(url) or shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        return False
    port = str(conninfo.conninfo_to_dict(url).get("port", "5432"))
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == port and fields[3] != "online":
            started = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", fields[0], fields[1], "start"],
                capture_output=True,
                text=True,
            )
            if started.returncode == 0:
                _wait(url, 30.0)
                return True
    return False


def _binary(name: str) -> str:
    """A server binary: the newest /usr/lib/postgresql/*/bin first (initdb and postgres
    must be of one version), then PATH."""
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which(name)
    if found is None:
        raise PostgresError(f"{name} not found: run scripts/install-system-deps.sh")
    return found


def server_user() -> str | None:
    """The user the server runs as: root may not run it, so it becomes `postgres`."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise PostgresError(
            "running as root needs a 'postgres' user (postgresql package)"
        ) from error
    return "postgres"


def private_url(port: int, dbname: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


def _start_private(state: Path, root: Path, port: int) -> None:
    data = root / "data"
    user = server_user()
    root.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        done = subprocess.run(
            [_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C"],
            capture_output=True, text=True, user=user, cwd=root,
        )
        if done.returncode != 0:
            raise PostgresError(
                f"initdb failed ({done.returncode}); {root} must be reachable by "
                f"user {user or 'you'}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
            )
    argv = [
        _binary("postgres"), "-D", str(data), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=",  # TCP only: no socket path length or permission trouble
        # Durable (PostgreSQL's defaults): the catalogue must keep what it acknowledged, as
        # the archive beside it does; a small site may run this stack for real.
        "-c", "max_connections=200",
    ]
    # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
    processes.start(state, NAME, argv, cwd=root, user=user,
                    stop_signal=signal.SIGINT, stop_timeout=20.0)


def server_url(database_url: str, state: Path, workdir: Path, port: int) -> tuple[str, str]:
    """(the database URL to use, how it is served: configured|system|private).

    A private cluster keeps its data in `workdir`; its pid file and log go under `state`.
    """
    dbname = conninfo.conninfo_to_dict(database_url).get("dbname") or "auxip"
    mine = private_url(port, dbname)
    if processes.is_alive(state, NAME):
        _wait(mine, 30.0, state)
        return mine, "private"
    if reachable(database_url):
        return database_url, "configured"
    if _start_system_cluster(database_url):
        return database_url, "system"
    processes.require_free_port(port, NAME)
    _start_private(state, workdir, port)
    _wait(mine, 30.0, state)
    return mine, "private"


def drop_database(url: str) -> None:
    """Drop the URL's database, disconnecting its sessions (a test run starts fresh)."""
    name = conninfo.conninfo_to_dict(url).get("dbname")
    if not name or name == "postgres":
        raise PostgresError(f"refusing to drop database {name!r}")
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def tail(state: Path | None, lines: int = 30) -> str:
    if state is None:
        return ""
    log = processes.log_path(state, NAME)
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- {log} (last {len(text)} lines)\n" + "\n".join(text)
