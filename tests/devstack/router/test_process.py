"""`python -m devstack.router` as a process: surviving a kill, and `--check`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

from tests.devstack.router.conftest import broker, free_port, trigger, wait_until_settled
from tests.devstack.router.subscribers import Received, post_event

REPOSITORY = Path(__file__).resolve().parents[3]


def start_process(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.router"],
        cwd=REPOSITORY,
        env=os.environ | env | {"AUXIP_PORT_BASE": str(port)},
        stderr=log.open("a"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    with httpx.Client(trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return process, url
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise AssertionError(f"router exited with {process.returncode}: {log.read_text()[-2000:]}")
            time.sleep(0.05)
    process.kill()
    raise AssertionError("router did not become healthy")


def test_deliveries_pending_when_the_router_is_killed_are_delivered_after_restart(
    clean_database, subscribers, tmp_path
):
    slow = threading.Event()
    slow.set()

    def respond(_request: Received, _index: int) -> tuple[int, dict[str, str], bytes]:
        if slow.is_set():
            time.sleep(0.3)
        return 200, {}, b""

    sub = subscribers(respond)
    (tmp_path / "knative").mkdir()
    (tmp_path / "knative" / "manifests.yaml").write_text(broker() + trigger("all", sub.url))
    env = {
        "AUXIP_DATABASE_URL": clean_database,
        "AUXIP_KNATIVE_DIR": str(tmp_path / "knative"),
        "AUXIP_ROUTER_WORKERS": "2",
    }
    log = tmp_path / "router.log"
    first, url = start_process(env, log)
    count = 40
    try:
        with httpx.Client(trust_env=False) as client:
            for i in range(count):
                assert post_event(url, "org.example.k", event_id=f"k-{i}", client=client).status_code == 202
        sub.wait_for(3)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    with psycopg.connect(clean_database) as conn:
        pending, claimed = conn.execute(
            "SELECT count(*), count(claimed_by) FROM router.deliveries WHERE status = 'pending'"
        ).fetchone()
    assert pending > count // 2 and claimed >= 1  # work left behind, some of it mid-flight
    slow.clear()
    second, _ = start_process(env, log)
    try:
        # The dead router's leases last 330s; its claims must be released as soon as its
        # database sessions are gone, not when the leases expire.
        assert wait_until_settled(clean_database, timeout=10) == {"delivered": count}
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    ids = sub.ids()
    assert set(ids) == {f"k-{i}" for i in range(count)}
    print(f"\nkilled with {pending} pending ({claimed} in flight); after restart all {count} "
          f"delivered, {len(ids) - count} duplicates")


def test_check_validates_the_repository_manifests():
    result = subprocess.run(
        [sys.executable, "-m", "devstack.router", "--check"],
        cwd=REPOSITORY, env=os.environ | {"AUXIP_PORT_BASE": "8080"}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for name, port in (("ingest", 8082), ("package", 8083), ("publish", 8084), ("notify", 8086)):
        assert f"Service/{name} -> http://127.0.0.1:{port}" in result.stdout
    assert "deadLetterSink=Service/deadletter -> http://127.0.0.1:8089" in result.stdout


def test_check_names_the_file_and_field_of_a_bad_manifest(tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(broker() + trigger("typo", "http://127.0.0.1:1/",
                                           "  filters:\n    - exactly: {type: x}"))
    result = subprocess.run(
        [sys.executable, "-m", "devstack.router", "--check"],
        cwd=REPOSITORY, env=os.environ | {"AUXIP_KNATIVE_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert f"{manifest}: Trigger test/typo: spec.filters[0]: unknown filter dialect 'exactly'" in result.stderr
