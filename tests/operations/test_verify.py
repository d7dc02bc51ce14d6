"""`auxip products verify` on the running pipeline: a deleted archive object, a changed one
and an orphan are found; prip answers 503 ProductUnavailable for the missing one (then 410
once taken offline); a lost zip is packaged again; uploading the same files again into
the inbox restores the rest, and every download is the catalogued bytes once more."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
from typer.testing import CliRunner

from devstack import demo_products
from devstack.stack.up import StackInfo
from events import types
from shared.adapters import storage
from shared.adapters.settings import Settings
from tests.adapters.telemetry.ecs_lines import SecurityStream
from tests.operations.conftest import cli, query, wait_until
from tests.reliability import clients

START = datetime(2025, 6, 1, tzinfo=UTC)
STRAY = "ingested/AUX_RESORB/stray-from-a-crash.EOF"


def _files() -> dict[str, bytes]:
    files = dict(demo_products.orbit_eof("A", "AUX_RESORB", START + timedelta(hours=3 * i),
                                         START + timedelta(hours=3 * i + 3),
                                         START + timedelta(hours=3 * i + 4), max_vectors=4)
                 for i in range(3))
    folder, content = demo_products.aux_safe("A", "AUX_CAL", START, START - timedelta(days=3))
    return files | {f"{folder}/{path}": body for path, body in content.items()}


def _products(s: Settings) -> dict[str, dict]:
    rows = query(s, "SELECT * FROM products WHERE status = 'published'")
    return {row["logical_name"]: row for row in rows}


def _download(s: Settings, info: StackInfo, row: dict) -> httpx.Response:
    return httpx.get(f"{clients.prip_root(info)}/Products({row['id']})/$value",
                     headers=clients.bearer(s, "alice", fresh=True), timeout=60)


def _md5(row: dict) -> str:
    return next(c["Value"] for c in row["checksums"] if c["Algorithm"] == "MD5")


def _verify(*options: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli(), ["products", "verify", "--grace", "0", *options])
    return done.exit_code, done.output


def test_verify_finds_what_the_archive_lost_and_the_same_files_restore_it(
        fresh: StackInfo, security_events: SecurityStream) -> None:
    s = fresh.settings
    client = storage.client(s)
    files = _files()
    for key, body in files.items():
        storage.put_bytes(client, s.inbox_bucket, key, body)
    wait_until("4 products published", lambda: len(_products(s)) == 4, timeout_s=120)
    code, output = _verify("--full")
    assert code == 0 and "0 disagreement(s)" in output, output
    catalogue = _products(s)
    gone, changed, kept = (catalogue[n] for n in sorted(n for n in catalogue if "ORB" in n))
    safe = next(row for name, row in catalogue.items() if name.endswith(".SAFE"))
    bucket = s.archive_bucket
    storage.delete(client, bucket, gone["archive_key"])
    body = bytearray(storage.get_bytes(client, bucket, changed["archive_key"]))
    body[-20] ^= 0x20
    storage.put_bytes(client, bucket, changed["archive_key"], bytes(body))
    storage.delete(client, bucket, safe["distribution_key"])
    storage.put_bytes(client, bucket, STRAY, b"bytes nobody catalogued")

    code, output = _verify("--sample", "0")
    assert code == 1, output
    lines = output.splitlines()
    for kind, key in (("missing", gone["archive_key"]), ("checksum", changed["archive_key"]),
                      ("missing", safe["distribution_key"]), ("orphan", STRAY)):
        assert any(kind in line and key in line for line in lines), (kind, key, output)
    assert "4 disagreement(s)" in output

    answer = _download(s, fresh, gone)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "ProductUnavailable"
    assert int(answer.headers["Retry-After"]) > 0

    code, output = _verify("--sample", "0", "--repair", "--mark-offline")
    assert code == 1
    assert f"repackaged: {safe['name']}" in output
    assert f"upload again: {gone['name']}" in output and "taken offline" in output
    assert security_events.events("auxip.operator.products.mark_offline") == []
    repaired = security_events.one("auxip.operator.products.repair")  # plain verify: none
    assert gone["name"] in repaired["auxip.offline"] and repaired["auxip.findings"] >= 3
    assert _download(s, fresh, gone).status_code == 410  # offline now: ProductOffline
    assert _download(s, fresh, safe).content != b""  # its zip is back already

    ingested_events = query(s, "SELECT count(*) AS n FROM event_journal WHERE type = %s",
                            types.PRODUCT_INGESTED)[0]["n"]
    for row in (gone, changed):
        storage.put_bytes(client, s.inbox_bucket, row["logical_name"],
                          files[row["logical_name"]])
    wait_until("the two orbit files restored and back online", lambda: all(
        storage.head(client, bucket, row["archive_key"]) is not None
        and storage.head(client, bucket, row["archive_key"])["etag"] == _md5(row)
        and _products(s)[row["logical_name"]]["online"] for row in (gone, changed)))
    for row in (gone, changed, kept, safe):
        answer = _download(s, fresh, row)
        assert answer.status_code == 200, (row["name"], answer.text)
        assert hashlib.md5(answer.content).hexdigest() == _md5(row), row["name"]
    assert query(s, "SELECT count(*) AS n FROM products")[0]["n"] == 4
    assert query(s, "SELECT count(*) AS n FROM event_journal WHERE type = %s",
                 types.PRODUCT_INGESTED)[0]["n"] == ingested_events
    assert query(s, "SELECT count(*) AS n FROM rejections")[0]["n"] == 0

    code, output = _verify("--full")
    assert code == 1 and "1 disagreement(s)" in output and STRAY in output  # the orphan
