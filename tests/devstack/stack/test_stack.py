"""The local stack itself: catalogue migrations, buckets, storage round trips, the inbox
notification, `auxip env`, and `up`/`down` on the session's test stack."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack import inbox_kafka
from devstack.settings import StackSettings
from devstack.stack import ceph, processes
from devstack.stack import up as stack_up
from devstack.stack.up import StackInfo
from shared.adapters import storage
from shared.adapters.catalogue import migrations
from shared.adapters.settings import Settings

REPO = Path(__file__).resolve().parents[3]
MiB = 1024**2


# --- background processes -------------------------------------------------------------------


def test_stop_reaches_the_whole_process_group(tmp_path: Path) -> None:
    pid = processes.start(tmp_path, "tree", ["sh", "-c", "sleep 60 & sleep 60 & wait"])
    assert processes.start(tmp_path, "tree", ["sh", "-c", "exit 1"]) == pid  # kept
    deadline = time.monotonic() + 5
    while len(_group(pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    members = _group(pid)
    assert len(members) == 3  # the shell and its two sleeps
    assert processes.stop(tmp_path, "tree") is True
    assert not [m for m in members if _running(m)]
    assert processes.tracked(tmp_path) == []
    assert "start sh -c" in processes.log_path(tmp_path, "tree").read_text()


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    pid = processes.start(tmp_path, "stubborn", ["sh", "-c", "trap '' TERM; sleep 60 & wait"],
                          stop_timeout=0.3)
    time.sleep(0.1)
    began = time.monotonic()
    processes.stop_all(tmp_path)
    assert time.monotonic() - began < 3
    assert not _running(pid) and not _group(pid)


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    processes.start(tmp_path, "short", ["true"])
    time.sleep(0.2)
    assert not processes.is_alive(tmp_path, "short")
    record = tmp_path / "run" / "short.json"
    forged = json.loads(record.read_text()) | {"pid": os.getpid(), "started": 1}
    record.write_text(json.dumps(forged))  # our own pid, another start time
    assert not processes.is_alive(tmp_path, "short")
    assert processes.stop(tmp_path, "short") is False  # and it is not signalled


def _group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


# --- catalogue ------------------------------------------------------------------------------


def test_migrations_are_recorded_and_idempotent(db: psycopg.Connection, db_url: str) -> None:
    versions = [m.version for m in migrations.available()]
    assert migrations.applied(db) == versions
    assert migrations.upgrade(db_url) == []  # the stack applied them; twice changes nothing
    assert migrations.upgrade(db_url) == []
    rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
    assert rows == [(m.version, m.name) for m in migrations.available()]


def test_clean_catalogue_empties_tables(db: psycopg.Connection, clean_catalogue: None) -> None:
    counts = db.execute(
        "SELECT count(*) FROM event_journal UNION ALL SELECT count(*) FROM products"
    ).fetchall()
    assert counts == [(0,), (0,)]


# --- S3 ---------------------------------------------------------------------------------------


def test_buckets_exist(settings: Settings, s3: Any) -> None:
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {settings.inbox_bucket, settings.archive_bucket, settings.quarantine_bucket} <= names


def test_storage_round_trip(settings: Settings, s3: Any, clean_buckets: None,
                            tmp_path: Path) -> None:
    archive, quarantine = settings.archive_bucket, settings.quarantine_bucket
    data = os.urandom(300_000)
    etag = storage.put_bytes(s3, archive, "a/one.bin", data, metadata={"origin": "test"})
    assert etag == hashlib.md5(data).hexdigest()

    chunks, size, got_etag = storage.open_stream(s3, archive, "a/one.bin", chunk_size=64 * 1024)
    assert (b"".join(chunks), size, got_etag) == (data, len(data), etag)
    part, size, _ = storage.open_stream(s3, archive, "a/one.bin", byte_range="bytes=10-19")
    assert (b"".join(part), size) == (data[10:20], 10)
    assert b"".join(storage.iter_chunks(s3, archive, "a/one.bin")) == data
    opened = storage.open_object(s3, archive, "a/one.bin", chunk_size=64 * 1024)
    assert opened is not None and (opened.size, opened.etag) == (len(data), etag)
    assert b"".join(opened.chunks) == data
    assert storage.open_object(s3, archive, "a/missing") is None
    refused = storage.open_object(s3, archive, "a/one.bin")
    assert refused is not None
    refused.close()  # unread: the connection is freed, the next request still works

    info = storage.head(s3, archive, "a/one.bin")
    assert info is not None and info["size"] == len(data) and info["etag"] == etag
    assert info["metadata"] == {"origin": "test"}
    assert storage.head(s3, archive, "a/missing") is None

    assert storage.copy(s3, archive, "a/one.bin", quarantine, "q/one.bin") == etag
    assert storage.get_bytes(s3, quarantine, "q/one.bin") == data
    assert storage.head(s3, quarantine, "q/one.bin")["metadata"] == {"origin": "test"}
    # the size known already: no HEAD, the same copy, metadata kept
    assert storage.copy(s3, archive, "a/one.bin", quarantine, "q/sized.bin",
                        size=len(data)) == etag
    assert storage.head(s3, quarantine, "q/sized.bin")["metadata"] == {"origin": "test"}

    source = tmp_path / "file.bin"
    source.write_bytes(data[:1000])
    storage.put_file(s3, archive, "a/two.bin", source, content_type="text/plain")
    assert storage.head(s3, archive, "a/two.bin")["content_type"] == "text/plain"
    assert list(storage.list_objects(s3, archive, "a/")) == [("a/one.bin", len(data)),
                                                           ("a/two.bin", 1000)]

    storage.delete(s3, archive, "a/one.bin")
    storage.delete(s3, archive, "a/one.bin")  # absent: not an error
    assert not storage.exists(s3, archive, "a/one.bin")
    assert list(storage.list_keys(s3, archive)) == ["a/two.bin"]


def test_multipart_copy_keeps_bytes_and_metadata(settings: Settings, s3: Any,
                                                 clean_buckets: None) -> None:
    # The >5 GiB path, exercised with a 5 MiB limit (S3's smallest part) on 11 MiB.
    data = os.urandom(11 * MiB)
    bucket = settings.archive_bucket
    storage.put_bytes(s3, bucket, "big", data, content_type="application/zip",
                      metadata={"k": "v"})
    etag = storage.copy(s3, bucket, "big", bucket, "big-copy", limit=5 * MiB,
                        part_size=5 * MiB)
    assert etag.endswith("-3")  # three parts
    assert storage.get_bytes(s3, bucket, "big-copy") == data
    info = storage.head(s3, bucket, "big-copy")
    assert info["content_type"] == "application/zip" and info["metadata"] == {"k": "v"}


def test_ensure_bucket_is_idempotent(s3: Any) -> None:
    assert storage.ensure_bucket(s3, "auxip-test-scratch") in (True, False)
    assert storage.ensure_bucket(s3, "auxip-test-scratch") is False
    s3.delete_bucket(Bucket="auxip-test-scratch")


class _Notifications(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def inbox_adapter_port(stack: StackInfo) -> Iterator[int]:
    """The inbox-adapter's port, where the notification points, free for a stand-in.

    When an end-to-end fixture runs the real inbox-adapter, it steps aside meanwhile."""
    adapter_ran = processes.stop(stack.settings.state_dir, "inbox-adapter")
    yield stack.layout.function_port("inbox-adapter")
    if adapter_ran:
        stack_up.up(stack.settings)


def test_inbox_put_is_notified(stack: StackInfo, s3: Any, inbox_adapter_port: int) -> None:
    inbox = stack.settings.inbox_bucket
    # An event the adapter misses (it is down) must not hold up later ones: when a fresh
    # RGW 16's very first push fails, pushes (and the PUTs waiting on them) stall for
    # minutes, which `up` prevents by priming it.
    began = time.monotonic()
    storage.put_bytes(s3, inbox, f"missed/{time.time_ns()}", b"x")
    handler = type("Received", (_Notifications,), {"received": []})
    server = ThreadingHTTPServer((stack.layout.host, inbox_adapter_port), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    key = f"notified/{time.time_ns()} S1A x+y.EOF"
    try:
        storage.put_bytes(s3, inbox, key, b"<Earth_Explorer_File/>")
        deadline = time.time() + 10  # synchronous: it is there when the PUT returns
        record = None
        while record is None and time.time() < deadline:
            for body in list(handler.received):
                for item in body.get("Records", []):
                    # RGW sends the key as is, MinIO URL-escaped.
                    got = item["s3"]["object"]["key"]
                    if key in (got, urllib.parse.unquote_plus(got)):
                        record = item
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert record is not None, (
        f"no notification for {key!r}; got {handler.received!r}"
        f"{ceph.tail(stack.settings.state_dir, 'radosgw')}"
    )
    assert time.monotonic() - began < 5, "the PUTs waited on a stalled notification push"
    assert record["eventName"].endswith("ObjectCreated:Put")
    assert record["s3"]["bucket"]["name"] == inbox
    assert record["s3"]["object"]["size"] == len(b"<Earth_Explorer_File/>")


# --- auxip env, up, down ------------------------------------------------------------------------


def _stack_environment(settings: Settings) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AUXIP_")}
    keep["AUXIP_PORT_BASE"] = str(settings.port_base)
    keep["AUXIP_STATE_DIR"] = str(settings.state_dir)
    return keep


def test_compiled_sources_are_current_bytecode() -> None:
    # PYTHONDONTWRITEBYTECODE (the image's, some machines') stops the import system from
    # writing it: without it each function start compiled its modules anew.
    main = REPO / "functions" / "verify" / "main.py"
    cached = Path(importlib.util.cache_from_source(str(main)))
    cached.unlink(missing_ok=True)
    stack_up.compile_sources()
    for folder in stack_up.COMPILED:
        for source in (REPO / folder).rglob("*.py"):
            data = Path(importlib.util.cache_from_source(str(source))).read_bytes()
            stat = source.stat()
            assert data[:4] == importlib.util.MAGIC_NUMBER, source
            assert int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            assert int.from_bytes(data[12:16], "little") == stat.st_size & 0xFFFFFFFF


def test_auxip_env_is_evaluable(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    script = 'eval "$("$AUXIP" env)" && env -0'
    environment = _stack_environment(settings) | {"AUXIP": str(REPO / ".venv" / "bin" / "auxip")}
    done = subprocess.run(["bash", "-c", script], env=environment, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    exported = dict(
        item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item
    )
    expected = stack_up.env(settings)
    for name in ("AUXIP_DATABASE_URL", "AUXIP_S3_ENDPOINT", "AUXIP_S3_ACCESS_KEY",
                 "AUXIP_S3_SECRET_KEY", "AUXIP_INBOX_BUCKET", "AUXIP_ARCHIVE_BUCKET",
                 "AUXIP_QUARANTINE_BUCKET", "AUXIP_PRIP_URL", "AUXIP_BROKER_URL",
                 "AUXIP_PORT_BASE", "AUXIP_STATE_DIR"):
        assert exported.get(name) == expected[name], name
    assert exported["AUXIP_S3_ENDPOINT"] == f"http://127.0.0.1:{settings.port_base + 30}"
    assert exported["AUXIP_DATABASE_URL"] == settings.database_url
    # A process started from that shell builds the stack's own Settings.
    for name in expected:
        monkeypatch.setenv(name, exported[name])
    rebuilt = StackSettings()
    for field in ("database_url", "s3_endpoint", "clamd_port", "prip_url", "broker_url",
                  "port_base", "state_dir", "inbox_bucket"):
        assert getattr(rebuilt, field) == getattr(settings, field), field


def test_the_kafka_broker_is_part_of_the_stack(stack: StackInfo) -> None:
    servers = stack.layout.kafka_bootstrap
    assert servers == f"127.0.0.1:{stack.settings.port_base + 34}"
    assert stack_up.env(stack.settings)["AUXIP_KAFKA_BOOTSTRAP_SERVERS"] == servers
    done = subprocess.run([str(REPO / ".venv" / "bin" / "auxip"), "status"],
                          env=_stack_environment(stack.settings) | {"COLUMNS": "200"},
                          capture_output=True, timeout=60)
    shown = done.stderr.decode()  # the table goes to stderr
    kafka_row = [line for line in shown.splitlines() if " kafka " in line]
    assert kafka_row and servers in kafka_row[0] and "running" in kafka_row[0], shown
    # It takes records and keeps them for consumers.
    topic = f"stack-{time.time_ns()}"
    (partition,) = inbox_kafka.produce(servers, topic, [("key", b"value")])
    ends = {p.partition: p.end for p in inbox_kafka.progress(servers, "nobody", [topic])}
    assert ends[partition] == 1


def test_up_again_keeps_what_runs(stack: StackInfo) -> None:
    # What runs now: a test may have restarted a server since the session began.
    before = {name: processes.pid(stack.settings.state_dir, name) for name in stack.pids()}
    again = stack_up.up(stack.settings, services_only=True)
    assert again.pids() == before
    assert not [s.name for s in again.services if s.started]
    assert again.seconds < 10


@pytest.mark.stack_teardown
def test_down_leaves_no_process(stack: StackInfo) -> None:
    state = stack.settings.state_dir
    pids = {p.name: p.pid for p in processes.tracked(state)}
    assert {"clamd", "kafka", "ceph-mon", "ceph-osd", "radosgw"} <= set(pids)
    stopped = stack_up.down(stack.settings)
    assert set(stopped) == set(pids)
    assert stack_up.status(stack.settings) == []
    for name, pid in pids.items():
        assert not _running(pid), f"{name} (pid {pid}) still runs"
    leftovers = [pid for pid, cmdline in _processes() if str(state) in cmdline]
    assert leftovers == [], f"processes mentioning {state}: {leftovers}"
    for port in (stack.layout.rgw_port, stack.layout.ceph_mon_port, stack.layout.clamd_port,
                 stack.layout.kafka_port):
        with socket.socket() as probe:
            assert probe.connect_ex((stack.layout.host, port)) != 0, f"port {port} still open"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _processes() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmdline and _running(int(entry.name)):
                yield int(entry.name), cmdline


def test_each_stack_asks_for_a_catalogue_of_its_own(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUXIP_DATABASE_URL", raising=False)
    states = [tmp_path / "one", tmp_path / "two", tmp_path / "old"]
    for state in states:
        state.mkdir()
    one, two = (StackSettings(state_dir=state) for state in states[:2])
    first = stack_up.requested_database(one)
    server, _, name = first.rpartition("/")
    assert server == StackSettings.model_fields["database_url"].default.rpartition("/")[0]
    assert name.startswith("auxip_") and len(name) == len("auxip_") + 8
    # Chosen once: the stack's later commands and `up`s find the same catalogue.
    assert stack_up.requested_database(one) == first
    assert stack_up.requested_database(StackSettings(state_dir=states[0])) == first
    # Another checkout's stack gets another one.
    assert stack_up.requested_database(two) != first
    # A stack that already keeps its catalogue under the shared name keeps it.
    shared = StackSettings.model_fields["database_url"].default
    (states[2] / "stack.json").write_text(json.dumps(
        {"database_url": shared, "requested_url": shared, "database": "system"}))
    assert stack_up.requested_database(StackSettings(state_dir=states[2])) == shared
    # The user's own URL is never renamed.
    mine = StackSettings(state_dir=states[0], database_url="postgresql://u@db.example/mine")
    assert stack_up.requested_database(mine) == "postgresql://u@db.example/mine"
