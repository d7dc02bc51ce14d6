"""Single-node Ceph for the local stack: a monitor, one in-memory OSD and a RADOS Gateway.

The gateway is the S3 server with real bucket notifications (MinIO has no server
package here). The OSD keeps objects in memory, so a cluster that lost any of its
daemons is rebuilt from nothing rather than repaired: it holds no data worth keeping.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devstack.stack import processes
from shared.adapters.settings import Settings

DAEMONS: tuple[str, ...] = ("ceph-mon", "ceph-osd", "radosgw")
DEFAULT_MEMSTORE_BYTES = 2 * 1024**3
_RGW_NAME = "client.rgw.auxip"
# radosgw sometimes needs 4-5 s to join its threads on SIGTERM; the cluster is rebuilt
# from nothing at the next start, so a clean shutdown saves nothing worth waiting for.
STOP_TIMEOUT_S = 1.0


class CephError(RuntimeError):
    pass


def folder(state: Path) -> Path:
    return state / "ceph"


def conf_path(state: Path) -> Path:
    return folder(state) / "ceph.conf"


def _conf(root: Path, fsid: str, mon_port: int, rgw_port: int, memstore_bytes: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}/0
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
# Without these radosgw waits 300 s for a monitor session that never comes.
ms mon client mode = crc secure
ms client mode = crc secure
ms bind ipv6 = false
public addr = 127.0.0.1
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
pid file = {root}/run/$name.pid
keyring = {root}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# One node: map changes need not be batched for a second (radosgw creates ~8 pools at start).
paxos propose interval = 0.05
paxos min wait = 0.01
# A nearly full disk holds no data of ours: do not let the monitor shut down over it.
mon data avail crit = 0
mon data avail warn = 1
[mon]
mon data = {root}/mon.$id
mon cluster log file = {root}/log/cluster.log
[osd]
osd data = {root}/osd.$id
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
[{_RGW_NAME}]
# Without tcp_nodelay every response with a body stalls ~40 ms (delayed ACK).
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {root}/rgw
# Deleted tails live in memory until collected: collect within minutes, not hours.
rgw gc obj min wait = 120
rgw gc processor period = 60
"""


def _run(argv: list[str], root: Path, timeout: float = 60.0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=root)
    if done.returncode != 0:
        raise CephError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def _ceph(root: Path, *args: str, timeout: float = 30.0) -> str:
    return _run(
        ["ceph", "-c", str(root / "ceph.conf"), "--connect-timeout", "20", *args],
        root,
        timeout,
    )


def running(state: Path) -> bool:
    return all(processes.is_alive(state, name) for name in DAEMONS)


def stop(state: Path) -> None:
    for name in reversed(DAEMONS):
        processes.stop(state, name)


def start(state: Path, mon_port: int, rgw_port: int, memstore_bytes: int) -> bool:
    """Run the cluster; True when started now, False when it already ran."""
    if running(state):
        return False
    stop(state)  # a partial cluster: its memory store is gone or about to be
    processes.require_free_port(mon_port, "ceph-mon")
    processes.require_free_port(rgw_port, "radosgw")
    root = folder(state)
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("run", "log", "mon.a", "osd.0", "rgw"):
        (root / sub).mkdir(parents=True)
    fsid = str(uuid.uuid4())
    (root / "ceph.conf").write_text(_conf(root, fsid, mon_port, rgw_port, memstore_bytes))
    conf = str(root / "ceph.conf")

    _run(["ceph-authtool", "--create-keyring", str(root / "keyring"), "--gen-key",
          "-n", "mon.", "--cap", "mon", "allow *"], root)
    _run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a",
          f"[v2:127.0.0.1:{mon_port}]", str(root / "monmap")], root)
    _run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", str(root / "monmap"),
          "--keyring", str(root / "keyring")], root)
    # -f: stay in the foreground so the pid we track is the daemon's own.
    processes.start(state, "ceph-mon", ["ceph-mon", "-f", "-c", conf, "-i", "a"], cwd=root,
                    stop_timeout=STOP_TIMEOUT_S)
    _wait_port(mon_port, 15.0, state, "ceph-mon")

    osd_uuid = str(uuid.uuid4())
    osd_id = _ceph(root, "osd", "new", osd_uuid).strip()
    _run(["ceph-osd", "-c", conf, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid], root)
    # The OSD adds itself to the CRUSH map at start (osd crush update on start).
    processes.start(state, "ceph-osd", ["ceph-osd", "-f", "-c", conf, "-i", osd_id], cwd=root,
                    stop_timeout=STOP_TIMEOUT_S)
    _wait_osd_up(root, state)

    processes.start(state, "radosgw", ["radosgw", "-f", "-c", conf, "-n", _RGW_NAME], cwd=root,
                    stop_timeout=STOP_TIMEOUT_S)
    _wait_http(f"http://127.0.0.1:{rgw_port}/", 60.0, state, "radosgw")
    return True


def ensure_user(state: Path, access_key: str, secret_key: str) -> None:
    """The S3 user with the configured keys (radosgw-admin is idempotent about it)."""
    root = folder(state)
    conf = str(root / "ceph.conf")
    try:
        info = json.loads(_run(["radosgw-admin", "-c", conf, "-n", _RGW_NAME,
                                "user", "info", "--uid=auxip"], root))
        keys = {(k["access_key"], k["secret_key"]) for k in info.get("keys", [])}
        if (access_key, secret_key) in keys:
            return
    except CephError:
        pass
    _run(["radosgw-admin", "-c", conf, "-n", _RGW_NAME, "user", "create", "--uid=auxip",
          "--display-name=auxip", f"--access-key={access_key}", f"--secret={secret_key}"], root)


def _sns(settings: Settings) -> Any:
    """RGW's topic API speaks the SNS protocol on the S3 endpoint."""
    return boto3.session.Session().client(
        "sns",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name=settings.s3_region,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
    )


def _topic(sns: Any, name: str) -> tuple[str | None, dict]:
    """(ARN, endpoint description) of the topic `name`, (None, {}) when there is none."""
    for item in sns.list_topics().get("Topics", []):
        arn = item["TopicArn"]
        if arn.rsplit(":", 1)[-1] == name:
            attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
            return arn, json.loads(attributes.get("EndPoint") or "{}")
    return None, {}


def _notify(s3: Any, bucket: str, topic: str, arn: str) -> None:
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"TopicConfigurations": [
            {"Id": topic, "TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}
        ]},
    )


def ensure_notification(settings: Settings, s3: Any, bucket: str, push_endpoint: str) -> bool:
    """`s3:ObjectCreated:*` of `bucket` POSTed to `push_endpoint`; True when (re)configured.

    Synchronous delivery: RGW POSTs the S3 record while it answers the PUT, so an event
    reaches the inbox adapter at once; an adapter that is down loses it (the PUT still
    succeeds). RGW 16.2 accepts `persistent=true`, which would queue and retry, but there
    it does not serve: the queue is first read 30 s after the gateway starts, and after a
    failed delivery a push stayed pending (pubsub_push_pending=1) for the 3+ minutes
    watched, the queue delivering nothing meanwhile.
    """
    sns = _sns(settings)
    topic = f"{bucket}-created"
    arn, endpoint = _topic(sns, topic)
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    wanted = {"Id": topic, "TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}
    if (arn is not None and endpoint.get("EndpointAddress") == push_endpoint
            and endpoint.get("Persistent") != "true"
            and current.get("TopicConfigurations") == [wanted]):
        return False
    arn = sns.create_topic(Name=topic, Attributes={"push-endpoint": push_endpoint})["TopicArn"]
    # The bucket keeps a copy of the topic as it was when the notification was put: a
    # changed endpoint takes effect only once the notification is put again.
    _notify(s3, bucket, topic, arn)
    return True


def notifies(s3: Any, bucket: str) -> bool:
    """Whether `bucket` has a notification configured. One cannot be taken back: RGW 16
    refuses an empty configuration (MalformedXML) and merges a new one into the old."""
    return bool(s3.get_bucket_notification_configuration(Bucket=bucket).get("TopicConfigurations"))


class _Primer(BaseHTTPRequestHandler):
    received = threading.Event()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        type(self).received.set()

    def log_message(self, *args: object) -> None:
        pass


def prime_notifications(settings: Settings, s3: Any, bucket: str, push_endpoint: str) -> None:
    """ensure_notification, on a fresh gateway whose first push must succeed.

    Measured on RGW 16.2.15: when a gateway's very first push fails (endpoint down), that
    push stays pending for minutes (~220 s) and so do the next ones, each PUT to the bucket
    waiting with them, even once the endpoint is up; after one successful push, failures
    are quick and counted, and later pushes work. So before the real endpoint is set, one
    event goes to a listener of our own.
    """
    handler = type("Primer", (_Primer,), {"received": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    sns = _sns(settings)
    # The real topic and notification id, pointed at our listener first: RGW 16 merges
    # notification configurations, so a separate priming one could not be removed.
    topic = f"{bucket}-created"
    try:
        arn = sns.create_topic(
            Name=topic, Attributes={"push-endpoint": f"http://127.0.0.1:{server.server_port}/"}
        )["TopicArn"]
        _notify(s3, bucket, topic, arn)
        s3.put_object(Bucket=bucket, Key=".auxip-prime", Body=b"")
        if not handler.received.wait(10.0):
            raise CephError("RGW did not deliver the priming notification")
        s3.delete_object(Bucket=bucket, Key=".auxip-prime")
        ensure_notification(settings, s3, bucket, push_endpoint)
    finally:
        server.shutdown()
        server.server_close()


def _wait_port(port: int, timeout: float, state: Path, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(state, name)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise CephError(f"{name} not listening on {port} after {timeout:.0f} s{tail(state, name)}")


def _wait_osd_up(root: Path, state: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(state, "ceph-osd")
        stat = json.loads(_ceph(root, "osd", "stat", "--format=json"))
        if stat.get("num_up_osds", 0) >= 1:
            return
        time.sleep(0.2)
    raise CephError(f"OSD not up after {timeout:.0f} s{tail(state, 'ceph-osd')}")


def _wait_http(url: str, timeout: float, state: Path, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(state, name)
        try:
            urllib.request.urlopen(url, timeout=2).close()  # nosec B310  # the stack's own URL
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it serves
        except OSError:
            time.sleep(0.1)
    raise CephError(f"{name} not answering {url} after {timeout:.0f} s{tail(state, name)}")


def _check_alive(state: Path, name: str) -> None:
    if not processes.is_alive(state, name):
        raise CephError(f"{name} exited{tail(state, name)}")


def tail(state: Path, name: str, lines: int = 30) -> str:
    """The end of a daemon's logs (its stdout and Ceph's own log file) for error messages."""
    logs = [processes.log_path(state, name)]
    own = {"ceph-mon": "mon.a", "ceph-osd": "osd.0", "radosgw": _RGW_NAME}.get(name)
    if own:
        logs.append(folder(state) / "log" / f"{own}.log")
    parts = []
    for log in logs:
        try:
            text = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        parts.append(f"\n--- {log} (last {len(text)} lines)\n" + "\n".join(text))
    return "".join(parts)
