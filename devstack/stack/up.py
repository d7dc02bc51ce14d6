"""The whole local stack: bring it up, describe it, take it down.

`up` is idempotent: what runs already is kept. Order: PostgreSQL (and migrations), clamd,
the Kafka broker, Ceph (S3 user and quota, buckets, inbox notification), the token
issuer, one functions-framework process per function folder that exists, then the event
router. Everything runs in the background under the state dir and outlives the command
that started it; `down` stops it and keeps the data (`devstack.stack.clean` forgets it).
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import pwd
import secrets
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.layout import Layout
from devstack.settings import (
    SECRET_KEYS_FILE,
    STATE_FILE,
    StackSettings,
    recorded,
    stack_settings,
    wired,
)
from devstack.stack import (
    ceph,
    clamav,
    kafka,
    postgres,
    processes,
    prometheus,
    rgw_notifications,
)
from functions import FUNCTIONS, folder_of
from shared.adapters import endpoint_secrets, storage
from shared.adapters.catalogue import migrations

REPO = Path(__file__).resolve().parents[2]
ROUTER = "router"
TOKEN_ISSUER = "token-issuer"
CLAMD = "clamd"


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    pid: int | None
    endpoint: str
    started: bool = False  # by this call (False: it ran already)


@dataclass(frozen=True)
class StackInfo:
    settings: StackSettings  # the stack's own: every URL and port points into it
    layout: Layout
    database: str  # how PostgreSQL is served: configured | system | private
    services: list[Service] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the operator should know

    def pids(self) -> dict[str, int]:
        return {s.name: s.pid for s in self.services if s.pid is not None}


def security_events_path(state: Path) -> Path:
    return Path(state).resolve() / "logs" / "security.jsonl"


def env(settings: StackSettings) -> dict[str, str]:
    """The AUXIP_* variables that point a process (function, CLI, test) at this stack."""
    s = stack_settings(settings)
    values = {
        "AUXIP_DATABASE_URL": s.database_url,
        "AUXIP_S3_ENDPOINT": s.s3_endpoint,
        "AUXIP_S3_ACCESS_KEY": s.s3_access_key,
        "AUXIP_S3_SECRET_KEY": s.s3_secret_key.get_secret_value(),
        "AUXIP_S3_REGION": s.s3_region,
        "AUXIP_INBOX_BUCKET": s.inbox_bucket,
        "AUXIP_ARCHIVE_BUCKET": s.archive_bucket,
        "AUXIP_QUARANTINE_BUCKET": s.quarantine_bucket,
        "AUXIP_CLAMD_HOST": s.clamd_host,
        "AUXIP_CLAMD_PORT": str(s.clamd_port),
        "AUXIP_PRIP_URL": s.prip_url,
        "AUXIP_AUTH_ISSUER": s.auth_issuer,
        "AUXIP_BROKER_URL": s.broker_url or Layout(s.port_base).router_url,
        "AUXIP_PORT_BASE": str(s.port_base),
        "AUXIP_STATE_DIR": str(s.state_dir),
        "AUXIP_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "AUXIP_INBOX_NOTIFICATIONS": s.inbox_notifications,
        # Every process of the stack (functions, CLI, tests) appends its security events
        # to one file beside the logs, as a collector would tail it in production.
        "AUXIP_SECURITY_EVENTS": f"file:{security_events_path(s.state_dir)}",
    }
    if s.token_url:
        values["AUXIP_TOKEN_URL"] = s.token_url
    if s.secret_keys:
        values["AUXIP_SECRET_KEYS"] = s.secret_keys.get_secret_value()
    return values


def _ensure_secret_keys(state: Path) -> None:
    """The local stack's key sealing endpoint passwords, made at its first start (created
    here only: the CLI pointed at another catalogue never invents a key of its own)."""
    path = state / SECRET_KEYS_FILE
    if not path.exists():
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_text(endpoint_secrets.new_key() + "\n")
        scratch.chmod(0o600)
        try:
            os.link(scratch, path)  # fails if another `up` made it first: one key stands
        except FileExistsError:
            pass
        finally:
            scratch.unlink()


def _store_bytes(settings: StackSettings) -> int:
    return settings.s3_store_bytes or ceph.DEFAULT_STORE_BYTES


def function_folders() -> list[str]:
    """Knative service names whose folder has a main.py, in layout order."""
    return [s for s in FUNCTIONS if (REPO / "functions" / folder_of(s) / "main.py").is_file()]


def has_router() -> bool:
    return (REPO / "devstack" / "router" / "__main__.py").is_file()


def _reachable_by(path: Path, user: str) -> bool:
    account = pwd.getpwnam(user)
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for folder in path.parents:
        try:
            st = folder.stat()
        except FileNotFoundError:
            continue  # made later by us, with the usual 0755
        if st.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def elsewhere(state: Path) -> Path:
    """Where servers keep their files when the state dir does not suit them."""
    digest = hashlib.sha1(os.fsencode(state), usedforsecurity=False).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"auxip-{digest}"


def service_dir(state: Path, name: str, user: str | None) -> Path:
    """The folder (made if missing) where a server that runs as `user` keeps its files:
    `<state>/<name>` when that user can reach it and the path is short enough for a Unix
    socket; else one in /tmp named after the state dir (a clone under /root is closed to
    `postgres` and `clamav`)."""
    chosen = state / name
    fits = len(os.fsencode(chosen)) <= 80  # clamd's socket path must stay under 108
    if not (fits and (user is None or os.geteuid() != 0 or _reachable_by(chosen, user))):
        chosen = elsewhere(state) / name
    chosen.mkdir(mode=0o755, parents=True, exist_ok=True)
    return chosen


def requested_database(settings: StackSettings) -> str:
    """The database URL this stack asks for: the user's, else the one it chose at its first
    `up`, else a new one named for this stack alone (`auxip_<8 hex>`, recorded at once).

    A name of its own per stack because the archive is per stack (in its state dir) while a
    machine's PostgreSQL serves every checkout: with one shared name, a second checkout
    listed the first one's products, whose bytes it does not have. `auxip clean` drops it."""
    if "database_url" in settings.model_fields_set:
        return settings.database_url
    state = settings.state_dir.resolve()
    found = recorded(state)
    if found.get("requested_url"):
        return str(found["requested_url"])
    server, _, _ = settings.database_url.rpartition("/")
    chosen = f"{server}/auxip_{secrets.token_hex(4)}"
    (state / STATE_FILE).write_text(json.dumps({**found, "requested_url": chosen}))
    return chosen


def database(settings: StackSettings) -> tuple[str, str]:
    """Make sure the catalogue's server runs: (database URL, configured|system|private)."""
    state = settings.state_dir.resolve()
    workdir = service_dir(state, "postgres", postgres.server_user())
    port = Layout(settings.port_base).postgres_port
    return postgres.server_url(requested_database(settings), state, workdir, port)


def _process_env(settings: StackSettings) -> dict[str, str]:
    """The caller's environment, less any other stack's addresses, plus this stack's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUXIP_") and k != "K_SINK"}
    base.update({k: v for k, v in os.environ.items() if k.startswith("AUXIP_")})
    base.update(env(settings))
    if not any(k in base for k in ("AUXIP_OUTBOUND_ALLOWED_NETWORKS",
                                   "AUXIP_NOTIFY_ALLOWED_NETWORKS")):
        # Everything of the local stack listens on loopback (receivers, the peer S3, SFTP
        # test servers), which the outbound policy refuses by default.
        base["AUXIP_OUTBOUND_ALLOWED_NETWORKS"] = "127.0.0.0/8,::1/128"
    base["K_SINK"] = base["AUXIP_BROKER_URL"]
    base["PYTHONUNBUFFERED"] = "1"
    return base


# What the functions import from this tree (the venv's own packages were compiled by pip).
COMPILED = ("shared", "events", "functions")


def compile_sources() -> None:
    """The functions' modules compiled to bytecode, as the image's `pip install` leaves them
    (Dockerfile): with PYTHONDONTWRITEBYTECODE set (as in the image, and on some machines)
    the import system never writes it, and every function start compiled all it imports
    again: 11-14% of the instructions of ingest's, verify's and prip's cold starts (~0.08 s
    of CPU, as much as building their S3 client). Files whose bytecode is up to date are
    only stat'ed."""
    for folder in COMPILED:
        compileall.compile_dir(REPO / folder, quiet=1)


def _wait_http(url: str, timeout: float, state: Path, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(state, name):
            break
        if processes.http_status(url) is not None:
            return  # it answers, whatever it thinks of a bare GET
        time.sleep(0.1)
    raise StackError(f"{name} not answering {url}{log_tail(state, name)}")


def log_tail(state: Path, name: str, lines: int = 40) -> str:
    log = processes.log_path(state, name)
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f" (no log at {log})"
    return f"\n--- {log} (last {len(text)} lines)\n" + "\n".join(text)


def _bin(name: str) -> str:
    # The venv that runs this code: functions must import the same `shared` and `events`.
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def _check_port_base(layout: Layout) -> None:
    """The kernel hands ports of its ephemeral range to outgoing connections at random: a
    server port in it fails to bind now and then (measured with a base of 38080)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return
    first, last = layout.port_base, layout.prometheus_port
    if first <= high and last >= low:
        raise StackError(
            f"AUXIP_PORT_BASE={layout.port_base} puts the stack's ports {first}-{last} in the "
            f"kernel's ephemeral range {low}-{high}: choose a base below {low - 40}"
        )


def up(settings: StackSettings, *, services_only: bool = False,
       monitoring: bool = False) -> StackInfo:
    """Start what is not running; `services_only` leaves out the router and functions,
    `monitoring` adds a Prometheus scraping every function (devstack.stack.prometheus)."""
    began = time.monotonic()
    layout = Layout(settings.port_base)
    _check_port_base(layout)
    state = settings.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    _ensure_secret_keys(state)
    services: list[Service] = []
    notes: list[str] = []

    def track(name: str, was_running: bool, endpoint: str) -> None:
        services.append(Service(name, processes.pid(state, name), endpoint, not was_running))

    # A running stack keeps the inbox wiring it was started with unless told otherwise.
    notifications = settings.inbox_notifications
    if "inbox_notifications" not in settings.model_fields_set and ceph.running(state):
        notifications = wired(recorded(state), settings) or notifications

    # PostgreSQL first: the URL it ends up on is part of every other process's settings.
    was = processes.is_alive(state, postgres.NAME)
    requested = requested_database(settings)
    url, how = database(settings.model_copy(update={"database_url": requested}))
    migrations.upgrade(url)
    (state / STATE_FILE).write_text(json.dumps(
        {"database_url": url, "requested_url": requested, "database": how,
         "inbox_bucket": settings.inbox_bucket, "inbox_notifications": notifications}
    ))
    if how == "private":
        track(postgres.NAME, was, f"127.0.0.1:{layout.postgres_port}")
    s = stack_settings(settings.model_copy(
        update={"database_url": url, "inbox_notifications": notifications}))

    was = processes.is_alive(state, CLAMD)
    if not was:
        processes.require_free_port(layout.clamd_port, CLAMD)
    clamav_user = clamav.CLAMAV_USER if os.geteuid() == 0 else None
    conf = clamav.write_config(service_dir(state, "clamav", clamav_user), layout.clamd_port)
    processes.start(state, CLAMD, clamav.clamd_argv(conf), stop_timeout=5.0)
    try:
        clamav.wait_ready(layout.host, layout.clamd_port, timeout=30.0)
    except TimeoutError as error:
        raise StackError(f"{error}{log_tail(state, CLAMD)}") from None
    track(CLAMD, was, f"{layout.host}:{layout.clamd_port}")

    try:
        started = kafka.start(state, layout.host, layout.kafka_port)
    except kafka.KafkaError as error:
        raise StackError(f"{error}{log_tail(state, kafka.NAME)}") from None
    track(kafka.NAME, not started, layout.kafka_bootstrap)

    cluster = ceph.start(state, layout.ceph_mon_port, layout.rgw_port, _store_bytes(s))
    notes.extend(cluster.notes)
    ceph.ensure_user(state, s.s3_access_key, s.s3_secret_key.get_secret_value(),
                     cluster.quota_bytes)
    s3 = storage.client(s)
    for bucket in (s.inbox_bucket, s.archive_bucket, s.quarantine_bucket):
        storage.ensure_bucket(s3, bucket)
    endpoint = layout.function_url("inbox-adapter") + "/"
    if s.inbox_notifications == "kafka":
        # As production's MinIO with only its Kafka target: no webhook on the inbox.
        if rgw_notifications.notifies(s3, s.inbox_bucket):
            raise StackError(
                f"s3://{s.inbox_bucket} already notifies inbox-adapter by webhook (the stack ran"
                " with AUXIP_INBOX_NOTIFICATIONS=webhook), and RGW cannot take a notification"
                " back: use another inbox bucket (AUXIP_INBOX_BUCKET), or `auxip clean` first"
                " (it deletes the stack's archive and catalogue)")
    elif "radosgw" in cluster.started:
        # A fresh gateway's first push must succeed. On a new cluster its object is also
        # the first write, which creates the data pool (~2 s): paid here, not by an upload.
        rgw_notifications.prime_notifications(s, s3, s.inbox_bucket, endpoint)
    else:
        rgw_notifications.ensure_notification(s, s3, s.inbox_bucket, endpoint)
    for name in ceph.DAEMONS:
        track(name, name not in cluster.started, layout.s3_endpoint if name == "radosgw" else "")

    if not services_only:
        environment = _process_env(s)
        # The local OIDC issuer (a stand-in for the Keycloak realm of production).
        was = processes.is_alive(state, TOKEN_ISSUER)
        if not was:
            processes.require_free_port(layout.token_port, TOKEN_ISSUER)
        processes.start(state, TOKEN_ISSUER, [_bin("python"), "-m", "devstack.token_issuer"],
                        env=environment, cwd=REPO, stop_timeout=5.0)
        _wait_http(s.token_url.rsplit("/protocol/", 1)[0] + "/.well-known/openid-configuration",
                   30.0, state, TOKEN_ISSUER)
        track(TOKEN_ISSUER, was, s.token_url)
        started: list[tuple[str, bool]] = []
        compile_sources()
        for service in function_folders():
            was = processes.is_alive(state, service)
            if not was:
                processes.require_free_port(layout.function_port(service), service)
            argv = [
                _bin("functions-framework"),
                "--source", str(REPO / "functions" / folder_of(service) / "main.py"),
                "--target", "handle",
                "--host", layout.host,
                "--port", str(layout.function_port(service)),
            ]
            processes.start(state, service, argv, env=environment, cwd=REPO,
                            stop_timeout=5.0)
            started.append((service, was))
        for service, was in started:  # they start in parallel; wait for each in turn
            _wait_http(layout.function_url(service) + "/", 60.0, state, service)
            track(service, was, layout.function_url(service))
        # The router last: deliveries it kept across a restart go out at once, and would
        # be dead-lettered if the functions were not there yet to take them.
        if has_router():
            was = processes.is_alive(state, ROUTER)
            if not was:
                processes.require_free_port(layout.router_port, ROUTER)
            processes.start(state, ROUTER, [_bin("python"), "-m", "devstack.router"],
                            env=environment, cwd=REPO, stop_timeout=5.0)
            _wait_http(layout.router_url + "/", 30.0, state, ROUTER)
            track(ROUTER, was, layout.router_url)
        if monitoring:
            was = processes.is_alive(state, prometheus.NAME)
            try:
                prometheus.start(state, layout, [service for service, _ in started])
                prometheus.wait_ready(state, layout)
            except (prometheus.PrometheusError, RuntimeError) as error:
                raise StackError(f"{error}{log_tail(state, prometheus.NAME)}") from None
            track(prometheus.NAME, was, prometheus.url(layout))

    return StackInfo(s, layout, how, services, time.monotonic() - began, notes)


def down(settings: StackSettings) -> list[str]:
    """Stop every process of the stack; returns the names that were running."""
    state = settings.state_dir.resolve()
    # Clients first, all at once; then the servers, newest first (radosgw before the OSD
    # before the monitor: each shuts down cleanly while the one below still answers).
    return processes.stop_all(state, waves=[[prometheus.NAME, *FUNCTIONS, ROUTER, TOKEN_ISSUER]])


def status(settings: StackSettings) -> list[Service]:
    """Every process the stack tracks, alive or not."""
    state = settings.state_dir.resolve()
    layout = Layout(settings.port_base)
    endpoints = {
        postgres.NAME: f"127.0.0.1:{layout.postgres_port}",
        CLAMD: f"{layout.host}:{layout.clamd_port}",
        kafka.NAME: layout.kafka_bootstrap,
        "radosgw": layout.s3_endpoint,
        ROUTER: layout.router_url,
        **{f: layout.function_url(f) for f in FUNCTIONS},
        prometheus.NAME: prometheus.url(layout),
    }
    return [
        Service(p.name, processes.pid(state, p.name), endpoints.get(p.name, ""))
        for p in processes.tracked(state)
    ]

