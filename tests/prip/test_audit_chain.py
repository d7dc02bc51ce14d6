"""The audit trail's hash chain (shared/adapters/catalogue/audit_chain.py): rows altered,
removed or reordered in PostgreSQL are named by `auxip audit verify`; concurrent writers
(threads on their own connections, and prip's downloads) keep the chain valid; `auxip audit
export` writes ECS JSON lines that link up."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from shared.adapters.catalogue import audit_chain
from shared.adapters.catalogue.audit import AuditEntry, record
from shared.operations.cli import audit
from tests.prip.catalogue import BY_NUMBER, audit_rows, last_audit_id, pid

pytestmark = pytest.mark.usefixtures("seeded")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit.app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


@pytest.fixture
def chain(settings) -> Iterator[psycopg.Connection]:
    """An empty audit trail (a chain from its genesis), emptied again afterwards so that a
    tampered chain does not outlive the test."""
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("TRUNCATE audit_log")
        yield conn
        conn.execute("TRUNCATE audit_log")


def write(conn: psycopg.Connection, count: int, actor: str = "tester") -> list[dict]:
    for number in range(count):
        record(conn, AuditEntry(actor=actor, action="download", outcome="completed",
                                product_id=uuid.uuid4(), client_address="192.0.2.7",
                                bytes_sent=1000 + number, range_spec=None,
                                details={"name": f"P{number}", "ratio": 0.1, "big": 1e20}))
    return conn.execute("SELECT * FROM audit_log ORDER BY chain_seq").fetchall()


def by_seq(rows: list[dict], seq: int) -> dict:
    return next(row for row in rows if row["chain_seq"] == seq)


def test_verify_names_an_altered_row_then_one_rehashed_to_hide_it(chain):
    rows = write(chain, 6)
    assert [row["chain_seq"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["prev_hash"] == audit_chain.GENESIS
    code, output = cli("verify")
    assert code == 0 and "chain intact" in output and "6 chained row(s)" in output
    assert f"head 6:{rows[-1]['row_hash']}" in output

    third = by_seq(rows, 3)
    chain.execute("UPDATE audit_log SET bytes_sent = 0 WHERE id = %s", (third["id"],))
    code, output = cli("verify")
    assert code == 1
    assert f"altered: row id {third['id']} (seq 3) altered" in output
    assert "1 problem(s)" in output  # the rows after it still link to its stored hash

    # Hiding it: the row's hash recomputed; the next row no longer follows it.
    changed = chain.execute("SELECT *, details::text AS details_text FROM audit_log"
                            " WHERE id = %s", (third["id"],)).fetchone()
    chain.execute("UPDATE audit_log SET row_hash = %s WHERE id = %s", (audit_chain.row_hash(
        changed, seq=3, prev=changed["prev_hash"], details_text=changed["details_text"]),
        third["id"]))
    code, output = cli("verify")
    assert code == 1
    assert f"row id {by_seq(rows, 4)['id']} (seq 4) does not follow seq 3" in output


def test_verify_names_removed_rows_and_the_anchor_covers_the_end(chain):
    rows = write(chain, 6)
    _, output = cli("verify")
    anchor = re.search(r"head (\d+:[0-9a-f]{64})", output).group(1)
    assert anchor == f"6:{rows[-1]['row_hash']}"

    chain.execute("DELETE FROM audit_log WHERE chain_seq = 4")
    code, output = cli("verify")
    assert code == 1 and f"removed: seq 4 removed (missing before row id {rows[4]['id']}" in output

    chain.execute("DELETE FROM audit_log WHERE chain_seq IN (2, 3)")
    code, output = cli("verify")
    assert code == 1 and "removed: seq 2..4 removed" in output

    # The last row cut off: the rest is a valid chain, only the anchor shows it.
    chain.execute("TRUNCATE audit_log")
    write(chain, 5)
    _, output = cli("verify")
    kept = re.search(r"head (\d+:[0-9a-f]{64})", output).group(1)
    chain.execute("DELETE FROM audit_log WHERE chain_seq = 5")
    assert cli("verify")[0] == 0
    code, output = cli("verify", "--anchor", kept)
    assert code == 1 and "anchored row seq 5 is gone: the chain ends at seq 4" in output
    assert cli("verify", "--anchor", "4:" + "0" * 64)[0] == 1  # a row, but not that one
    code, output = cli("verify", "--anchor", "nonsense")
    assert code == 2 and "not an anchor" in output


def test_verify_names_reordered_rows(chain):
    rows = write(chain, 6)
    second, fifth = by_seq(rows, 2), by_seq(rows, 5)
    # Swapped places (the unique index wants a free place in between).
    chain.execute("UPDATE audit_log SET chain_seq = -1 WHERE id = %s", (second["id"],))
    chain.execute("UPDATE audit_log SET chain_seq = 2 WHERE id = %s", (fifth["id"],))
    chain.execute("UPDATE audit_log SET chain_seq = 5 WHERE id = %s", (second["id"],))
    code, output = cli("verify")
    assert code == 1
    first = output.splitlines()[0]
    assert first == f"reordered: row id {fifth['id']} reordered: at seq 2, written as seq 5"
    assert f"row id {second['id']} reordered: at seq 5, written as seq 2" in output

    # Swapped contents (the rows keep their places and hashes): both altered.
    chain.execute("TRUNCATE audit_log")
    rows = write(chain, 4)
    one, two = by_seq(rows, 1), by_seq(rows, 2)
    chain.execute("UPDATE audit_log SET bytes_sent = %s, product_id = %s WHERE id = %s",
                  (two["bytes_sent"], two["product_id"], one["id"]))
    chain.execute("UPDATE audit_log SET bytes_sent = %s, product_id = %s WHERE id = %s",
                  (one["bytes_sent"], one["product_id"], two["id"]))
    code, output = cli("verify")
    assert code == 1 and output.splitlines()[0].startswith(f"altered: row id {one['id']} (seq 1)")


def test_a_row_slipped_in_around_the_writer_is_named(chain):
    write(chain, 2)
    slipped = chain.execute("INSERT INTO audit_log (actor, action, outcome) VALUES"
                            " ('mallory', 'download', 'completed') RETURNING id").fetchone()
    code, output = cli("verify")
    assert code == 1 and f"row id {slipped['id']} has no place in the chain" in output


def test_concurrent_writers_keep_one_valid_chain(chain, api, settings):
    threads, each = 8, 50
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                write(conn, each, actor=f"writer-{number}")
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    before = last_audit_id(settings)
    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    downloads = [threading.Thread(target=api.get, args=(f"Products({pid(n)})/$value", "bob"))
                 for n in (3, 13, 20)]
    for started in workers + downloads:
        started.start()
    for started in workers + downloads:
        started.join()
    assert failures == []
    assert len(audit_rows(settings, actor="bob", since_id=before, wait_for=3)) == 3
    report = audit_chain.verify(chain)
    assert report.problems == []
    seqs = [row["chain_seq"] for row in chain.execute(
        "SELECT chain_seq FROM audit_log ORDER BY chain_seq")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= threads * each + 3
    assert report.checked == len(seqs)


def test_export_writes_ecs_lines_that_link_up(chain, api, settings, tmp_path):
    write(chain, 3)
    before = last_audit_id(settings)
    assert api.get(f"Products({pid(3)})/$value", "bob").status_code == 200
    assert len(audit_rows(settings, actor="bob", since_id=before, wait_for=1)) == 1
    target = tmp_path / "audit.jsonl"
    code, output = cli("export", "--since", "1h", "--format", "ecs", "--output", str(target))
    assert code == 0 and "4 row(s) exported" in output
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == 4
    previous = audit_chain.GENESIS
    for seq, line in enumerate(lines, start=1):
        assert line["auxip"]["audit"]["seq"] == seq
        assert line["auxip"]["audit"]["prev_hash"] == previous
        previous = line["auxip"]["audit"]["hash"]
    assert f"(anchor) 4:{previous}" in output
    download = lines[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", download["@timestamp"])
    assert download["event"] == {"kind": "event", "category": ["web", "file"],
                                 "type": ["access"], "action": "download",
                                 "dataset": "auxip.audit", "outcome": "success",
                                 "id": download["event"]["id"]}
    assert download["user"] == {"name": "bob"}
    assert download["source"]["ip"] == "127.0.0.1"
    assert download["auxip"]["product"] == {"id": str(pid(3))}
    assert download["auxip"]["bytes_sent"] == BY_NUMBER[3].size
    assert download["auxip"]["audit"]["outcome"] == "completed"

    code, output = cli("export", "--since", "2999-01-01T00:00:00Z")
    assert code == 0 and "0 row(s) exported; last chained row (anchor) none" in output
    code, output = cli("export", "--format", "csv")
    assert code == 2 and "the only format is ecs" in output
