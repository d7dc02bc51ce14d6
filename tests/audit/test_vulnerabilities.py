"""The vulnerability check of `make audit`: pip-audit against an OSV database. No public
database is reachable from here, so a stand-in serves the OSV query API over HTTP on
loopback (as a ground segment's own mirror would, `--osv-url`), answering from the
advisories each test gives it. The check runs every package when the database answers
for the canary, fails on a known vulnerability, and says NOT CHECKED - never "no known
vulnerabilities" - when the database is silent or away."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from audit.vulnerabilities import CANARY
from tests.audit.conftest import MakeAudit

CANARY_NAME, CANARY_VERSION = CANARY.split("==")


@dataclass
class Database:
    url: str
    advisories: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def advise(self, name: str, version: str, id_: str, fixed: str) -> None:
        self.advisories.setdefault((name, version), []).append({
            "id": id_, "schema_version": "1.6.0", "summary": f"{name} {version} is vulnerable",
            "aliases": [f"CVE-{id_}"], "affected": [{
                "package": {"name": name, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
        })


@pytest.fixture
def database() -> Iterator[Database]:
    served = Database(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = (query["package"]["name"], query["version"])
            served.queries.append(key)
            vulns = served.advisories.get(key, [])
            body = json.dumps({"vulns": vulns} if vulns else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


def _frozen(runtime_python: Path) -> set[tuple[str, str]]:
    out = subprocess.run([str(runtime_python), "-m", "pip", "freeze", "--all",
                          "--disable-pip-version-check"], check=True, capture_output=True,
                         text=True).stdout
    return {(re.sub(r"[-_.]+", "-", name).lower(), version)
            for name, version in (line.split("==") for line in out.split())}


def test_a_known_vulnerability_fails_and_every_package_is_asked_about(
        database: Database, runtime_python: Path, make_audit: MakeAudit):
    database.advise(CANARY_NAME, CANARY_VERSION, "GHSA-j8r2-6x86-q33q", "2.31.0")
    shipped = _frozen(runtime_python)
    yaml_version = dict(shipped)["pyyaml"]
    database.advise("pyyaml", yaml_version, "PYSEC-0000-1", "99.0")

    done = make_audit("--runtime-python", runtime_python, "--osv-url", database.url,
                      "vulnerabilities")

    assert done.returncode != 0
    assert "audit: vulnerabilities: failed" in done.stdout
    assert f"pyyaml {yaml_version}: PYSEC-0000-1 (CVE-PYSEC-0000-1) fixed in 99.0" in done.stdout
    assert set(database.queries) == shipped | {(CANARY_NAME, CANARY_VERSION)}


def test_no_known_vulnerability_passes_once_the_database_answered(
        database: Database, runtime_python: Path, make_audit: MakeAudit):
    database.advise(CANARY_NAME, CANARY_VERSION, "GHSA-j8r2-6x86-q33q", "2.31.0")

    done = make_audit("--runtime-python", runtime_python, "--osv-url", database.url,
                      "vulnerabilities")

    assert done.returncode == 0, done.stdout
    assert "audit: vulnerabilities: passed" in done.stdout
    assert f"{len(_frozen(runtime_python))} packages, no known vulnerability" in done.stdout


@pytest.mark.parametrize("answers", [True, False], ids=["silent database", "no database"])
def test_a_database_that_does_not_answer_is_not_a_pass(
        database: Database, runtime_python: Path, make_audit: MakeAudit, answers: bool,
        tmp_path: Path):
    url = database.url if answers else "http://127.0.0.1:9/v1/query"  # discard port: closed

    done = make_audit("--runtime-python", runtime_python, "--osv-url", url, "vulnerabilities")

    assert done.returncode == 0  # an offline CI can still run the other checks...
    assert "audit: vulnerabilities: NOT CHECKED" in done.stdout  # ...but it is told, loudly
    assert "!!! vulnerabilities NOT CHECKED" in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(s["step"], s["status"]) for s in summary] == [("vulnerabilities", "NOT CHECKED")]
    assert "No known vulnerabilities found" not in done.stdout + done.stderr
    assert database.queries == ([(CANARY_NAME, CANARY_VERSION)] if answers else [])

    done = make_audit("--runtime-python", runtime_python, "--osv-url", url,
                      "--require-vulnerability-db", "vulnerabilities")
    assert done.returncode != 0
    assert "audit: vulnerabilities: failed" in done.stdout
