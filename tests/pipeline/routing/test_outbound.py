"""Routing targets under the outbound policy (shared/pipeline/routing/targets/outbound.py):
`auxip routes load` refuses a target on a denied address; at send, an HTTP, S3 or SFTP
target on a denied address is a failed transfer (`target_denied`, not retried) that never
reaches the address; a redirect is not followed. This package allows 127.0.0.1 only (see
conftest), so 127.0.0.2, a live receiver, stands for the loopback service to protect."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml
from typer.testing import CliRunner

from shared.adapters.runtime import Runtime
from shared.operations.cli import routes as routes_cli
from shared.pipeline.routing import transfers
from tests.pipeline.routing.conftest import ENV, add_route, journal, published_event, rows
from tests.pipeline.routing.servers import Receiver, SftpServer
from tests.pipeline.routing.test_transfers import FAST, QUICK_RETRY, _orbits


def _failed(rt: Runtime, route: str) -> dict:
    [row] = rows(rt, "SELECT * FROM transfers WHERE route = %s", route)
    return row


def test_routes_load_refuses_targets_on_denied_addresses(settings, clean_catalogue: None,
                                                        tmp_path: Path) -> None:
    for name, target, shown in [
        ("metadata", {"kind": "http", "url": "http://169.254.169.254/latest/{name}"},
         "169.254.169.254 is in the denied network 169.254.0.0/16"),
        ("private-sftp", {"kind": "sftp", "path": "/in", "login": {
            "host": "10.0.0.1", "username": "u", "password": "${AUXIP_X}",
            "host_key": "ssh-ed25519 AAAA"}}, "10.0.0.1 is in the denied network 10.0.0.0/8"),
        ("loopback-s3", {"kind": "s3", "endpoint": "http://[::1]:9000", "bucket": "b"},
         "::1 is in the denied network ::1/128"),
        ("mapped", {"kind": "http", "url": "http://[::ffff:127.0.0.2]:8080/{name}"},
         "::ffff:127.0.0.2 is in the denied network 127.0.0.0/8"),
        ("by-name", {"kind": "http", "url": "http://localhost:8080/{name}"},
         "loopback name"),
    ]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"routes": [
            {"name": "fine", "target": {"kind": "http", "url": "https://rx.example.org/{name}"}},
            {"name": name, "target": target}]}))
        loaded = CliRunner().invoke(routes_cli.app, ["load", str(path)])
        assert loaded.exit_code == 1, loaded.output
        assert f"route {name}: target host" in loaded.output and shown in loaded.output
        assert "outbound_" in loaded.output and "AUXIP_OUTBOUND_ALLOWED_NETWORKS" in loaded.output
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM routes").fetchone()[0] == 0  # not even `fine`


def test_an_http_target_on_a_denied_address_fails_at_once_never_called(rt: Runtime) -> None:
    loopback = Receiver(host="127.0.0.2").start()  # answers: only the policy keeps it safe
    try:
        [product] = _orbits(rt, 1)
        add_route(rt, name="to-loopback", match={}, retry=QUICK_RETRY,
                  target={"kind": "http", "url": f"{loopback.base}/in/{{name}}"})
        [outcome] = transfers.route_published(rt, published_event(rt, product), ENV, FAST)
        assert (outcome.status, outcome.attempts) == ("failed", 1)  # not retried
        row = _failed(rt, "to-loopback")
        assert row["reason"] == "target_denied"
        assert "refused (outbound_address_denied): address 127.0.0.2 is in the denied" \
               " network 127.0.0.0/8" in row["error"]
        [event] = journal(rt, "org.auxip.transfer.failed.v1")
        assert event["reason"] == "target_denied"
        assert loopback.puts == []
    finally:
        loopback.stop()


def test_an_http_target_redirecting_is_not_followed(rt: Runtime) -> None:
    loopback = Receiver(host="127.0.0.2").start()
    redirecting = Receiver(redirect_to=f"{loopback.base}/stolen").start()
    try:
        products = _orbits(rt, 2)
        for product, where in zip(products, (f"{loopback.base}/stolen",
                                             "http://169.254.169.254/latest/meta-data"),
                                  strict=True):
            redirecting.redirect_to = where
            add_route(rt, name="to-redirect", match={"name": product.name},
                      retry={"attempts": 1},
                      target={"kind": "http", "url": f"{redirecting.base}/in/{{name}}"})
            [outcome] = transfers.route_published(rt, published_event(rt, product), ENV, FAST)
            assert outcome.status == "failed"
            [row] = rows(rt, "SELECT * FROM transfers WHERE product_id = %s", product.id)
            assert row["reason"] == "target_refused"
            assert f"HTTP 307, redirect to {where} not followed" in row["error"]
        assert loopback.puts == [] and len(redirecting.puts) == 2
    finally:
        redirecting.stop()
        loopback.stop()


def test_s3_and_sftp_targets_on_denied_addresses_fail_at_send(
        rt: Runtime, sftp_server: SftpServer) -> None:
    products = _orbits(rt, 2, "MPL_ORBSCT")
    add_route(rt, name="to-s3", match={"name": products[0].name}, retry=QUICK_RETRY,
              target={"kind": "s3", "endpoint": "http://169.254.169.254", "bucket": "b",
                      "access_key": "k", "secret_key": "${AUXIP_TEST_PEER_SECRET_KEY}"})
    add_route(rt, name="to-sftp", match={"name": products[1].name}, retry=QUICK_RETRY,
              target={"kind": "sftp", "path": "/in",
                      "login": sftp_server.login(host="127.0.0.2")})
    for product, route, address in ((products[0], "to-s3", "169.254.169.254"),
                                    (products[1], "to-sftp", "127.0.0.2")):
        [outcome] = transfers.route_published(rt, published_event(rt, product), ENV, FAST)
        assert (outcome.status, outcome.attempts) == ("failed", 1)
        row = _failed(rt, route)
        assert row["reason"] == "target_denied" and f"address {address} is in" in row["error"]
    assert not (sftp_server.root / "in").exists()
