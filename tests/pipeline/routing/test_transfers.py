"""Routes: published products to S3 (other keys), another auxip's inbox, a directory, SFTP
and HTTP, verified there; round trips back through the pollers; retries of a target that
is down; a target that stores other bytes is failed, never completed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from shared.adapters import storage
from shared.adapters.runtime import Runtime
from shared.pipeline.routing import polling, transfers
from shared.pipeline.routing.settings import RoutingSettings
from tests.pipeline.routing.conftest import (
    ENV,
    INBOX,
    PEER_BUCKET,
    Published,
    add_route,
    add_source,
    inbox_bytes,
    journal,
    orbit_name,
    peer_s3,
    publish,
    published_event,
    rows,
)
from tests.pipeline.routing.servers import Receiver, SftpServer, free_port

FAST = RoutingSettings(route_inline_retry_s=5.0)
QUICK_RETRY = {"attempts": 3, "backoff_s": 0.05, "max_backoff_s": 0.2}


def _orbits(rt: Runtime, count: int = 2, product_type: str = "AUX_RESORB") -> list[Published]:
    return [publish(rt, orbit_name(n, product_type), os.urandom(50_000 + n), product_type)
            for n in range(count)]


def _route(rt: Runtime, product: Published, settings: RoutingSettings = FAST) -> list[Any]:
    return transfers.route_published(rt, published_event(rt, product), ENV, settings)


def _transfer(rt: Runtime, route: str, product: Published) -> dict:
    [row] = rows(rt, "SELECT * FROM transfers WHERE route = %s AND product_id = %s", route,
                 product.id)
    return row


def test_s3_round_trip_with_other_credentials(rt: Runtime, peer_user: dict[str, str]) -> None:
    peer = peer_s3(rt.settings)
    storage.delete_prefix(peer, PEER_BUCKET)
    products = _orbits(rt)
    add_route(rt, name="to-sra", match={"product_type": ["AUX_*ORB"]},
              target={"kind": "s3", "bucket": PEER_BUCKET, "key": "S1/{product_type}/{name}",
                      "access_key": "${AUXIP_TEST_PEER_ACCESS_KEY}",
                      "secret_key": "${AUXIP_TEST_PEER_SECRET_KEY}"})
    for product in products:
        [outcome] = _route(rt, product)
        assert (outcome.status, outcome.attempts) == ("completed", 1)
        row = _transfer(rt, "to-sra", product)
        assert (row["status"], row["bytes"], row["checksum"]) == (
            "completed", len(product.body), product.md5)
        assert row["target"].endswith(f"/{PEER_BUCKET}/S1/AUX_RESORB/{product.name}")
    completed = journal(rt, "org.auxip.transfer.completed.v1")
    assert sorted(c["name"] for c in completed) == sorted(p.name for p in products)

    # And back: the peer's bucket as a source, with the peer's keys.
    add_source(rt, name="sra", kind="s3", bucket=PEER_BUCKET, prefix="S1/AUX_RESORB/",
               access_key="${AUXIP_TEST_PEER_ACCESS_KEY}",
               secret_key="${AUXIP_TEST_PEER_SECRET_KEY}")
    [polled] = polling.poll_all(rt, ENV)
    assert polled.fetched == 2
    for product in products:
        assert inbox_bytes(rt, f"poll/sra/{product.name}") == product.body


def test_another_auxip_inbox(rt: Runtime) -> None:
    [product] = _orbits(rt, 1, "AUX_POEORB")
    add_route(rt, name="mirror", match={}, target={"kind": "auxip", "bucket": INBOX})
    [outcome] = _route(rt, product)
    assert outcome.status == "completed"
    assert inbox_bytes(rt, product.name) == product.body
    stored = storage.head(rt.s3, INBOX, product.name)
    assert stored is not None and stored["etag"] == product.md5


def test_directory_round_trip(rt: Runtime, tmp_path: Path) -> None:
    products = _orbits(rt)
    add_route(rt, name="to-disk", match={"name": "S1A_OPER_AUX_RESORB_*"},
              target={"kind": "directory", "path": str(tmp_path / "out" / "{product_type}")})
    assert [o.status for p in products for o in _route(rt, p)] == ["completed"] * 2
    folder = tmp_path / "out" / "AUX_RESORB"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in products)

    add_source(rt, name="disk", kind="directory", path=str(tmp_path / "out"), settle_s=0)
    [polled] = polling.poll_all(rt, ENV)
    assert polled.fetched == 2
    for product in products:
        assert inbox_bytes(rt, f"poll/disk/AUX_RESORB/{product.name}") == product.body


def test_sftp_round_trip(rt: Runtime, sftp_server: SftpServer) -> None:
    products = _orbits(rt, 2, "MPL_ORBSCT")
    add_route(rt, name="to-mission-planning", match={"product_type": "MPL_ORBSCT"},
              target={"kind": "sftp", "login": sftp_server.login(),
                      "path": "/S1/inbox/{product_type}"})
    assert [o.status for p in products for o in _route(rt, p)] == ["completed"] * 2
    landed = sftp_server.root / "S1" / "inbox" / "MPL_ORBSCT"
    assert sorted(p.name for p in landed.iterdir()) == sorted(p.name for p in products)

    env = {**ENV, "AUXIP_TEST_SFTP_KEY": sftp_server.client_key}
    add_source(rt, name="mpip", kind="sftp", path="/S1/inbox", settle_s=0,
               login=sftp_server.login(password=None, private_key="${AUXIP_TEST_SFTP_KEY}"))
    [polled] = polling.poll_all(rt, env)
    assert polled.fetched == 2
    for product in products:
        assert inbox_bytes(rt, f"poll/mpip/MPL_ORBSCT/{product.name}") == product.body


def test_a_redelivered_event_transfers_once(rt: Runtime, receiver: Receiver) -> None:
    [product] = _orbits(rt, 1)
    add_route(rt, name="to-http", match={},
              target={"kind": "http", "url": f"{receiver.base}/in/{{name}}"})
    assert [o.status for o in _route(rt, product)] == ["completed"]
    assert [o.status for o in _route(rt, product)] == ["already_completed"]
    assert transfers.sweep(rt, ENV, FAST) == []
    assert receiver.puts == [f"/in/{product.name}"]
    assert receiver.stored[f"/in/{product.name}"] == product.body
    assert len(journal(rt, "org.auxip.transfer.completed.v1")) == 1
    assert _transfer(rt, "to-http", product)["attempts"] == 1


def test_a_target_down_for_a_while_is_retried_until_it_succeeds(rt: Runtime) -> None:
    [product] = _orbits(rt, 1)
    port = free_port()  # nothing listens there yet: the receiver is down
    add_route(rt, name="to-http", match={},
              target={"kind": "http", "url": f"http://127.0.0.1:{port}/in/{{name}}",
                      "verify": "head"},
              retry={"attempts": 10, "backoff_s": 0.2, "max_backoff_s": 5})
    # Waits of 0.2 s then 0.4 s: the first fits the invocation's budget, the second not.
    [outcome] = _route(rt, product, RoutingSettings(route_inline_retry_s=0.3))
    assert (outcome.status, outcome.attempts) == ("pending", 2)
    row = _transfer(rt, "to-http", product)
    assert (row["status"], row["reason"]) == ("pending", "target_unreachable")

    # Not due yet: the sweep leaves it.
    assert transfers.sweep(rt, ENV, FAST) == []
    receiver = Receiver().start(port)  # the target comes back
    try:
        time.sleep(0.5)
        [retried] = transfers.sweep(rt, ENV, FAST)
        assert (retried.status, retried.attempts) == ("completed", 3)
        assert receiver.stored[f"/in/{product.name}"] == product.body
    finally:
        receiver.stop()
    row = _transfer(rt, "to-http", product)
    assert (row["status"], row["attempts"], row["error"], row["bytes"]) == (
        "completed", 3, None, len(product.body))
    assert [c["attempts"] for c in journal(rt, "org.auxip.transfer.completed.v1")] == [3]
    assert journal(rt, "org.auxip.transfer.failed.v1") == []


@pytest.mark.parametrize("verify", ["readback", "head"])
def test_a_target_storing_other_bytes_is_failed_never_completed(rt: Runtime,
                                                                verify: str) -> None:
    [product] = _orbits(rt, 1)
    # With `head`, only what the server states about its copy can be compared: an ETag.
    receiver = Receiver(corrupt=True, etag=True).start()
    try:
        add_route(rt, name="to-http", match={}, retry=QUICK_RETRY,
                  target={"kind": "http", "url": f"{receiver.base}/in/{{name}}",
                          "verify": verify})
        [outcome] = _route(rt, product)
    finally:
        receiver.stop()
    assert (outcome.status, outcome.attempts) == ("failed", 3)
    assert len(receiver.puts) == 3
    row = _transfer(rt, "to-http", product)
    assert (row["status"], row["reason"]) == ("failed", "checksum_mismatch")
    assert journal(rt, "org.auxip.transfer.completed.v1") == []
    [failed] = journal(rt, "org.auxip.transfer.failed.v1")
    assert (failed["reason"], failed["attempts"]) == ("checksum_mismatch", 3)
    # Failed for good: neither a redelivery nor the sweep sends it again.
    assert [o.status for o in _route(rt, product)] == ["already_failed"]
    assert transfers.sweep(rt, ENV, FAST) == []


def test_an_sftp_target_storing_other_bytes_is_failed(rt: Runtime,
                                                      tmp_path: Path) -> None:
    server = SftpServer(tmp_path, corrupt=True).start()
    try:
        [product] = _orbits(rt, 1)
        add_route(rt, name="to-mission-planning", match={}, retry=QUICK_RETRY,
                  target={"kind": "sftp", "login": server.login(), "path": "/in"})
        [outcome] = _route(rt, product)
    finally:
        server.stop()
    assert outcome.status == "failed"
    assert _transfer(rt, "to-mission-planning", product)["reason"] == "checksum_mismatch"
    assert journal(rt, "org.auxip.transfer.completed.v1") == []


def test_rules_choose_the_routes(rt: Runtime, tmp_path: Path) -> None:
    resorb, poeorb = _orbits(rt, 1), _orbits(rt, 1, "AUX_POEORB")
    mpl = publish(rt, orbit_name(5, "MPL_ORBSCT", "B"), b"mpl" * 100, "MPL_ORBSCT", unit="B",
                  attributes={"fileVersion": "0020"})
    # As the poll step records it: this one came from Mission Planning.
    with rt.pool.connection() as conn:
        conn.execute("INSERT INTO seen_sources (source, item_key, product_name)"
                     " VALUES ('mission-planning', 'x', %s)", (mpl.name,))
    target = {"kind": "directory", "path": str(tmp_path / "{product_type}")}
    add_route(rt, name="orbits", target=target,
              match={"product_type": ["AUX_RESORB", "AUX_POEORB", "MPL_ORBSCT"]},
              exclude={"origin": "poll:mission-planning"})
    add_route(rt, name="unit-b-v20", target=target,
              match={"platform_serial": "B", "attributes": {"fileVersion": "0020"},
                     "name_regex": r"^S1B_OPER_MPL_ORBSCT_.*_V\d{8}T"})
    add_route(rt, name="disabled", target=target, enabled=False, match={})

    chosen = {p.name: sorted(o.route for o in _route(rt, p))
              for p in (*resorb, *poeorb, mpl)}
    assert chosen == {resorb[0].name: ["orbits"], poeorb[0].name: ["orbits"],
                      mpl.name: ["unit-b-v20"]}


def test_a_missing_secret_waits_for_the_operator(rt: Runtime, tmp_path: Path) -> None:
    """A target whose variable is not set is retried, not dropped: once the deployment
    has it, the sweep delivers."""
    [product] = _orbits(rt, 1)
    add_route(rt, name="to-disk", match={}, target={"kind": "directory",
                                                    "path": "${AUXIP_TEST_OUT}"},
              retry={"attempts": 5, "backoff_s": 0.1})
    [outcome] = _route(rt, product, RoutingSettings(route_inline_retry_s=0))
    assert outcome.status == "pending"
    row = _transfer(rt, "to-disk", product)
    assert row["reason"] == "config_invalid" and "AUXIP_TEST_OUT" in row["error"]
    time.sleep(0.2)
    [retried] = transfers.sweep(rt, {**ENV, "AUXIP_TEST_OUT": str(tmp_path)}, FAST)
    assert (retried.status, retried.attempts) == ("completed", 2)
    assert (tmp_path / product.name).read_bytes() == product.body
