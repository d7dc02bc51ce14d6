"""Pollers: a directory, another system's S3 bucket (other keys) and an SFTP server, each
into the inbox, checked, announced once; what was fetched is not fetched again."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.adapters import storage
from shared.adapters.runtime import Runtime
from shared.pipeline.routing import polling
from tests.pipeline.routing.conftest import (
    ENV,
    INBOX,
    PEER_BUCKET,
    add_source,
    inbox_bytes,
    journal,
    orbit_name,
    peer_s3,
    rows,
)
from tests.pipeline.routing.servers import SftpServer

SAFE = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"


def _files(root: Path) -> dict[str, bytes]:
    files = {
        orbit_name(1): b"<Earth_Explorer_File>one</Earth_Explorer_File>\n" * 50,
        orbit_name(2): os.urandom(70_000),
        f"{SAFE}/manifest.safe": b"<xfdu/>\n" * 10,
        f"{SAFE}/data/s1a-aux-cal.xml": os.urandom(20_000),
    }
    for relative, body in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body)
    # Never fetched: hidden, partial, not a Sentinel-1 name, a link out of the folder.
    (root / ".hidden.EOF").write_bytes(b"x")
    (root / f"{orbit_name(3)}.part").write_bytes(b"half")
    (root / "README.txt").write_bytes(b"not a product")
    (root / orbit_name(4)).symlink_to("/etc/hostname")
    return files


def test_directory_files_reach_the_inbox_once(rt: Runtime, tmp_path: Path) -> None:
    files = _files(tmp_path)
    add_source(rt, name="drop", kind="directory", path=str(tmp_path), settle_s=0)

    [result] = polling.poll_all(rt, ENV)
    assert (result.status, result.fetched, result.failed) == ("polled", 4, 0), result

    for relative, body in files.items():
        assert inbox_bytes(rt, f"poll/drop/{relative}") == body
    assert sorted(storage.list_keys(rt.s3, INBOX)) == sorted(f"poll/drop/{r}" for r in files)
    arrived = journal(rt, "org.auxip.file.arrived.v1")
    assert sorted(a["key"] for a in arrived) == sorted(f"poll/drop/{r}" for r in files)
    assert {a["origin"] for a in arrived} == {"poll:drop"}
    assert {a["bucket"] for a in arrived} == {INBOX}
    seen = rows(rt, "SELECT item_key, product_name FROM seen_sources WHERE source = 'drop'")
    assert {r["item_key"]: r["product_name"] for r in seen}[f"{SAFE}/manifest.safe"] == SAFE

    # Seen already: nothing fetched, nothing announced, even when forced.
    [again] = polling.poll_all(rt, ENV, force=True)
    assert (again.fetched, again.skipped) == (0, 4)
    assert len(journal(rt, "org.auxip.file.arrived.v1")) == 4

    # Not due yet (interval 60 s): not even listed.
    [early] = polling.poll_all(rt, ENV)
    assert early.status == "not_due"

    # A file written again is a new version: fetched again (ingest decides what it is).
    changed = tmp_path / orbit_name(1)
    changed.write_bytes(b"<Earth_Explorer_File>two</Earth_Explorer_File>\n")
    os.utime(changed, (time.time() - 5, time.time() - 5))
    [third] = polling.poll_all(rt, ENV, force=True)
    assert (third.fetched, third.skipped) == (1, 3)
    assert inbox_bytes(rt, f"poll/drop/{orbit_name(1)}") == changed.read_bytes()


def test_directory_files_still_being_written_wait(rt: Runtime, tmp_path: Path) -> None:
    (tmp_path / orbit_name(1)).write_bytes(b"just now")
    old = tmp_path / orbit_name(2)
    old.write_bytes(b"a while ago")
    os.utime(old, (time.time() - 120, time.time() - 120))
    add_source(rt, name="drop", kind="directory", path=str(tmp_path), settle_s=30,
               delete_after_fetch=True)

    [result] = polling.poll_all(rt, ENV)
    assert result.fetched == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [orbit_name(1)]  # fetched: removed
    assert list(storage.list_keys(rt.s3, INBOX)) == [f"poll/drop/{orbit_name(2)}"]


def test_s3_bucket_of_another_system(rt: Runtime, peer_user: dict[str, str]) -> None:
    peer = peer_s3(rt.settings)
    storage.delete_prefix(peer, PEER_BUCKET)
    bodies = {f"S1/{orbit_name(n)}": os.urandom(10_000 + n) for n in range(3)}
    for key, body in bodies.items():
        storage.put_bytes(peer, PEER_BUCKET, key, body)
    storage.put_bytes(peer, PEER_BUCKET, "elsewhere/" + orbit_name(9), b"not under the prefix")
    add_source(rt, name="sra", kind="s3", bucket=PEER_BUCKET, prefix="S1/",
               access_key="${AUXIP_TEST_PEER_ACCESS_KEY}",
               secret_key="${AUXIP_TEST_PEER_SECRET_KEY}", inbox_prefix="",
               delete_after_fetch=True)

    [result] = polling.poll_all(rt, ENV)
    assert (result.status, result.fetched) == ("polled", 3), result
    for key, body in bodies.items():
        assert inbox_bytes(rt, key.removeprefix("S1/")) == body
    # Our own keys cannot even list the peer's bucket: the source used the peer's.
    with pytest.raises(ClientError, match="AccessDenied"):
        list(storage.list_keys(rt.s3, PEER_BUCKET))
    assert list(storage.list_keys(peer, PEER_BUCKET)) == ["elsewhere/" + orbit_name(9)]
    etags = {a["key"]: a["etag"] for a in journal(rt, "org.auxip.file.arrived.v1")}
    assert etags == {k.removeprefix("S1/"): storage.head(rt.s3, INBOX, k.removeprefix("S1/"))
                     ["etag"] for k in bodies}


def test_s3_source_with_wrong_keys_reports_and_fetches_nothing(rt: Runtime,
                                                               peer_user: dict[str, str]
                                                               ) -> None:
    add_source(rt, name="sra", kind="s3", bucket=PEER_BUCKET,
               access_key="${AUXIP_TEST_PEER_ACCESS_KEY}", secret_key="${AUXIP_TEST_WRONG}")
    [result] = polling.poll_all(rt, {**ENV, "AUXIP_TEST_WRONG": "not-the-secret"})
    assert result.status == "error" and "SignatureDoesNotMatch" in result.detail
    [missing] = polling.poll_all(rt, ENV, force=True)
    assert missing.status == "error" and "AUXIP_TEST_WRONG is not set" in missing.detail
    state = rows(rt, "SELECT state FROM sources WHERE name = 'sra'")[0]["state"]
    assert "AUXIP_TEST_WRONG" in state["last_error"]
    assert list(storage.list_keys(rt.s3, INBOX)) == []


def test_sftp_outbox_with_a_private_key(rt: Runtime, sftp_server: SftpServer) -> None:
    outbox = sftp_server.root / "S1" / "outbox"
    outbox.mkdir(parents=True)
    bodies = {orbit_name(n, "MPL_ORBPRE"): os.urandom(300_000 + n) for n in range(2)}
    for name, body in bodies.items():
        (outbox / name).write_bytes(body)
    (outbox / f".{orbit_name(7)}.part").write_bytes(b"being written")
    env: dict[str, Any] = {**ENV, "AUXIP_TEST_SFTP_KEY": sftp_server.client_key}
    login = sftp_server.login(password=None, private_key="${AUXIP_TEST_SFTP_KEY}")
    add_source(rt, name="mission-planning", kind="sftp", login=login, path="/S1/outbox",
               settle_s=0, delete_after_fetch=True)

    [result] = polling.poll_all(rt, env)
    assert (result.status, result.fetched) == ("polled", 2), result
    for name, body in bodies.items():
        assert inbox_bytes(rt, f"poll/mission-planning/{name}") == body
    assert [p.name for p in outbox.iterdir()] == [f".{orbit_name(7)}.part"]


def test_sftp_server_with_another_host_key_is_refused(rt: Runtime,
                                                      sftp_server: SftpServer) -> None:
    (sftp_server.root / orbit_name(1)).write_bytes(b"x")
    impostor = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF8mzW0EebwJ+WXUZlfLAfmqBmOYn561d/bCXCIKphIy"
    add_source(rt, name="mission-planning", kind="sftp", path="/", settle_s=0,
               login=sftp_server.login(host_key=impostor))
    [result] = polling.poll_all(rt, ENV)
    assert result.status == "error" and "mission-planning" not in result.detail
    assert "127.0.0.1" in result.detail
    assert list(storage.list_keys(rt.s3, INBOX)) == []
