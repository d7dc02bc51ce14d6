"""Two auxip instances on one machine: B polls A's OData API and ends with the same products
and checksums, though B's poller is killed in the middle of a download and started again.

- A: the test stack's catalogue and archive, filled by the real ingest/package/publish
  steps, with the prip function served over loopback behind a real token issuer (B uses
  the client-credentials grant; its token lives 4 s, so it is renewed during the run).
- B: another database on the same PostgreSQL (`<test db>_b`) and its own buckets on the
  same RGW (`routing-b-*`). Its poller is the real poll function, run by
  functions-framework as its own process and woken by a PingSource-like event; the rest of
  B's pipeline is run in this process from B's journal (tests/pipeline/routing/pipeline.py).
- Between them a pass-through proxy stops in the middle of the third download, so the
  test can kill B's poller there (SIGKILL: no clean-up of any kind).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import httpx
import psycopg
import pytest
from cloudevents.http import CloudEvent
from psycopg import conninfo
from psycopg.rows import dict_row
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request

from devstack import demo_products
from devstack.stack import postgres
from devstack.token_issuer.app import IssuerConfig, create_app
from devstack.token_issuer.keys import key_path, load_or_create_key
from events import bindings, envelope, types
from events.files import FileArrived
from events.products import Checksum, ProductPackaged
from shared.adapters import outbox, runtime, storage
from shared.adapters.catalogue import migrations, products
from shared.adapters.catalogue import sources as sources_table
from shared.adapters.runtime import Runtime
from shared.adapters.settings import Settings
from shared.core.checksums import of_bytes
from shared.core.s1time import format_odata
from shared.pipeline import publication
from shared.pipeline.ingestion import ingest
from shared.pipeline.routing import config, polling
from shared.pipeline.routing.oauth import TokenClient, TokenError
from shared.prip import service as prip_service
from tests.devstack.issuer import realm_of
from tests.pipeline.routing.pipeline import drain
from tests.pipeline.routing.servers import free_port

REPO = Path(__file__).resolve().parents[3]
A_INBOX = "routing-a-inbox"
B_BUCKETS = {"inbox_bucket": "routing-b-inbox", "archive_bucket": "routing-b-archive",
             "quarantine_bucket": "routing-b-quarantine"}
CLIENT, CLIENT_SECRET = "auxip-b", "b-client-secret"
TOKEN_LIFETIME_S = 4
GATE_AT = 3  # the download during which B's poller is killed


def _serve(app: Any) -> BaseWSGIServer:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def _stop(server: BaseWSGIServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
    issuer_url = f"http://127.0.0.1:{server.port}/realms/auxip"
    server.app = create_app(IssuerConfig(
        issuer=issuer_url, key=load_or_create_key(key_path(tmp_path)),
        realm=realm_of("mirror:mirror-pw:reader", f"{CLIENT}:{CLIENT_SECRET}:reader"),
        lifetime_s=TOKEN_LIFETIME_S))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield issuer_url
    _stop(server)


def _reset_functions() -> None:
    if prip_service.current.cache_info().currsize:
        prip_service.current().close()
    prip_service.current.cache_clear()
    if runtime.current.cache_info().currsize:
        runtime.current().close()
    runtime.current.cache_clear()


@pytest.fixture
def a_prip(issuer: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[str]:
    """A's OData API: the prip function, configured as in production, on loopback."""
    monkeypatch.setenv("AUXIP_AUTH_ISSUER", issuer)
    _reset_functions()
    app = functions_framework.create_app(target="handle",
                                         source=str(REPO / "functions" / "prip" / "main.py"))
    server = _serve(app)
    yield f"http://127.0.0.1:{server.port}"
    _stop(server)
    _reset_functions()


@pytest.fixture
def rt_a(settings: Settings, s3: Any, clean_buckets: None, clean_catalogue: None
         ) -> Iterator[Runtime]:
    storage.ensure_bucket(s3, A_INBOX)
    built = runtime.build(settings.model_copy(update={"broker_url": None,
                                                      "inbox_bucket": A_INBOX}))
    yield built
    built.close()


@pytest.fixture
def rt_b(settings: Settings, s3: Any) -> Iterator[Runtime]:
    url = conninfo.make_conninfo(settings.database_url,
                                 dbname=conninfo.conninfo_to_dict(settings.database_url)
                                 ["dbname"] + "_b")
    postgres.drop_database(url)
    migrations.upgrade(url)
    for bucket in B_BUCKETS.values():
        storage.ensure_bucket(s3, bucket)
        storage.delete_prefix(s3, bucket)
    built = runtime.build(settings.model_copy(update={"broker_url": None, "database_url": url,
                                                      **B_BUCKETS}))
    yield built
    built.close()


def _fill_a(rt: Runtime, *, orbits_only: bool = False) -> dict[str, str]:
    """Real files through A's real pipeline; {published name: MD5}, in publication order."""
    now = datetime.now(UTC).replace(microsecond=0)
    files: list[tuple[str, bytes]] = []
    for unit, product_type, hours in (("A", "AUX_RESORB", 6), ("A", "AUX_RESORB", 3),
                                      ("C", "AUX_RESORB", 3), ("A", "AUX_POEORB", 30)):
        start = now - timedelta(hours=hours)
        files.append(demo_products.orbit_eof(unit, product_type, start,
                                             start + timedelta(hours=2),
                                             start + timedelta(hours=2, minutes=5), step_s=300))
    if orbits_only:
        return _through_pipeline(rt, files)
    cal, cal_files = demo_products.aux_safe("A", "AUX_CAL", now - timedelta(days=30),
                                            now - timedelta(days=31))
    files += [(f"{cal}/{path}", body) for path, body in sorted(cal_files.items())]
    ins, ins_files = demo_products.aux_safe("C", "AUX_INS", now - timedelta(days=30),
                                            now - timedelta(days=31), seed=1)
    files.append((f"{ins}.zip", demo_products.zip_folder(ins, ins_files)))
    return _through_pipeline(rt, files)


def _through_pipeline(rt: Runtime, files: list[tuple[str, bytes]]) -> dict[str, str]:
    for key, body in files:
        storage.put_bytes(rt.s3, A_INBOX, key, body)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        for key, body in files:  # what the inbox notification would announce
            outbox.record(conn, envelope.build(
                types.FILE_ARRIVED, FileArrived(bucket=A_INBOX, key=key, size=len(body),
                                                arrived_at=datetime.now(UTC)), source="/test"))
    drain(rt)
    return _published(rt)


def _published(rt: Runtime) -> dict[str, str]:
    with psycopg.connect(rt.settings.database_url, row_factory=dict_row) as conn:
        found = conn.execute("SELECT name, checksums FROM products WHERE status = 'published'"
                             " ORDER BY publication_date").fetchall()
    return {r["name"]: next(c["Value"] for c in r["checksums"] if c["Algorithm"] == "MD5")
            for r in found}


class Gate:
    """A pass-through proxy to A's API that stalls in the middle of one download."""

    def __init__(self, upstream: str, stall_at: int) -> None:
        self.upstream = upstream
        self.stall_at = stall_at
        self.downloads = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        self.http = httpx.Client(timeout=30)
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        answer = self.http.get(self.upstream + request.full_path.rstrip("?"),
                               headers={k: v for k, v in request.headers.items()
                                        if k.lower() in ("authorization", "accept")})
        headers = [("Content-Type", answer.headers.get("Content-Type", "application/json")),
                   ("Content-Length", str(len(answer.content)))]
        status = f"{answer.status_code} {answer.reason_phrase}"
        if request.path.endswith("/$value") and answer.status_code == 200:
            with self.lock:
                self.downloads += 1
                stall = self.downloads == self.stall_at
            if stall:
                start_response(status, headers)
                return self._half(answer.content)
        start_response(status, headers)
        return [answer.content]

    def _half(self, body: bytes) -> Iterator[bytes]:
        yield body[: len(body) // 2]
        self.reached.set()
        self.release.wait(30)


class Poller:
    """B's poll function as its own process (functions-framework), as `auxip up` runs it."""

    def __init__(self, rt: Runtime, log: Path) -> None:
        self.port = free_port()
        s = rt.settings
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("AUXIP_") and k != "K_SINK"}
        environment.update({
            "AUXIP_DATABASE_URL": s.database_url, "AUXIP_S3_ENDPOINT": s.s3_endpoint,
            "AUXIP_S3_ACCESS_KEY": s.s3_access_key,
            "AUXIP_S3_SECRET_KEY": s.s3_secret_key.get_secret_value(),
            "AUXIP_INBOX_BUCKET": s.inbox_bucket, "AUXIP_ARCHIVE_BUCKET": s.archive_bucket,
            "AUXIP_QUARANTINE_BUCKET": s.quarantine_bucket,
            "AUXIP_TEST_A_CLIENT_SECRET": CLIENT_SECRET,  # the Secret the source refers to
            "PYTHONUNBUFFERED": "1",
        })
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "functions-framework"),
             "--source", str(REPO / "functions" / "poll" / "main.py"), "--target", "handle",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env=environment, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: gunicorn's worker is a child
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the poll function did not start: {log.read_text()}")

    def tick(self) -> httpx.Response:
        """What the PingSource sends every minute."""
        event = CloudEvent({"type": "dev.knative.sources.ping",
                            "source": "/apis/v1/namespaces/auxip/pingsources/poll"}, {})
        headers, body = bindings.to_http_binary(event)
        return httpx.post(f"http://127.0.0.1:{self.port}/", headers=headers, content=body,
                          timeout=60)

    def kill(self) -> None:
        """SIGKILL to the server and its worker: no chance to tidy anything up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        self.log.close()


def test_b_mirrors_a_through_its_odata_api_across_a_poller_crash(
        rt_a: Runtime, rt_b: Runtime, a_prip: str, issuer: str, tmp_path: Path) -> None:
    a_products = _fill_a(rt_a)
    assert len(a_products) == 6

    gate = Gate(a_prip, stall_at=GATE_AT)
    proxy = _serve(gate)
    source = config.ODataSource(
        name="a", kind="odata", url=f"http://127.0.0.1:{proxy.port}/odata/v1",
        auth=config.OAuth2(token_url=f"{issuer}/protocol/openid-connect/token",
                           grant="client_credentials", client_id=CLIENT,
                           client_secret="${AUXIP_TEST_A_CLIENT_SECRET}"),
        start=datetime(2020, 1, 1, tzinfo=UTC), overlap_s=30, page_size=2)
    with psycopg.connect(rt_b.settings.database_url, autocommit=True) as conn:
        sources_table.upsert(conn, config.source_row(source))

    log = tmp_path / "poll.log"
    first = Poller(rt_b, log)
    ticking = threading.Thread(target=lambda: _ignore_errors(first.tick), daemon=True)
    try:
        ticking.start()
        assert gate.reached.wait(30), log.read_text()
        assert _seen(rt_b) == GATE_AT - 1  # two fetched, the third half-way
        first.kill()
    finally:
        gate.release.set()
        first.stop()
    _wait_for_advisory_locks_to_go(rt_b)

    second = Poller(rt_b, log)
    try:
        answer = second.tick()
        assert answer.status_code == 200, log.read_text()
        assert _seen(rt_b) == len(a_products), log.read_text()
        assert second.tick().status_code == 200  # nothing new: nothing fetched
    finally:
        second.stop()

    # Each of A's products was announced once in B, whatever the crash interrupted.
    with psycopg.connect(rt_b.settings.database_url, row_factory=dict_row) as conn:
        arrived = conn.execute("SELECT data FROM event_journal WHERE type ="
                               " 'org.auxip.file.arrived.v1'").fetchall()
        state = sources_table.get(conn, "a")["state"]  # type: ignore[index]
    keys = sorted(r["data"]["key"] for r in arrived)
    assert keys == sorted(f"poll/a/{name}" for name in a_products)
    assert {r["data"]["origin"] for r in arrived} == {"poll:a"}
    assert state["last_error"] is None and state["failures"] == {}
    assert state["since"] == _last_publication(rt_a)

    drain(rt_b)
    assert _published(rt_b) == a_products
    for name, md5 in a_products.items():
        body = storage.get_bytes(rt_b.s3, rt_b.settings.archive_bucket,
                                 _distribution_key(rt_b, name))
        assert hashlib.md5(body).hexdigest() == md5
    _stop(proxy)


@pytest.mark.parametrize("sub_ms_us", [0, 400], ids=["on-a-millisecond", "within-one"])
def test_a_product_whose_bytes_differ_from_its_checksum_holds_the_window(
        rt_a: Runtime, rt_b: Runtime, a_prip: str, issuer: str, sub_ms_us: int) -> None:
    """A's catalogue announces an MD5 its bytes do not have: B refuses the copy, keeps its
    window before it, fetches the rest; once A is right, B fetches it on its next run."""
    a_products = list(_fill_a(rt_a, orbits_only=True))
    wrong = a_products[1]
    # The window holds the first product's PublicationDate as the API shows it (whole
    # milliseconds), and the next listing asks for dates after it: the first product comes
    # again (skipped) unless its date is a whole millisecond. Its date is set to one case
    # or the other (the clock chose, 1 run in 1000 on a whole millisecond).
    with psycopg.connect(rt_a.settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE products SET publication_date = date_trunc('second', %s::timestamptz)"
                     " - interval '1 second' + %s * interval '1 microsecond' WHERE name = %s",
                     (_publication_date(rt_a, wrong), sub_ms_us, a_products[0]))
    again = 1 if sub_ms_us else 0
    with psycopg.connect(rt_a.settings.database_url, autocommit=True) as conn:
        right = conn.execute("SELECT checksums FROM products WHERE name = %s",
                             (wrong,)).fetchone()[0]  # type: ignore[index]
        conn.execute("UPDATE products SET checksums = %s WHERE name = %s",
                     (json.dumps([{**c, "Value": "0" * 32} if c["Algorithm"] == "MD5" else c
                                  for c in right]), wrong))
    environ = _poll_a_with_no_overlap(rt_b, a_prip, issuer)

    [first] = polling.poll_all(rt_b, environ)
    assert (first.fetched, first.failed) == (3, 1)
    state = _state(rt_b)
    assert state["since"] == _publication_of(rt_a, a_products[0])  # held before the bad one
    assert state["failures"][next(iter(state["failures"]))]["count"] == 1
    assert "MD5" in state["failures"][next(iter(state["failures"]))]["error"]
    assert not storage.exists(rt_b.s3, rt_b.settings.inbox_bucket, f"poll/a/{wrong}")

    with psycopg.connect(rt_a.settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE products SET checksums = %s WHERE name = %s",
                     (json.dumps(right), wrong))
    [second] = polling.poll_all(rt_b, environ, force=True)
    assert (second.fetched, second.skipped, second.failed) == (1, 2 + again, 0)
    state = _state(rt_b)
    assert state["failures"] == {} and state["since"] == _last_publication(rt_a)
    drain(rt_b)
    assert _published(rt_b) == _published(rt_a)


def test_a_product_published_while_a_later_one_commits_first_is_still_polled(
        rt_a: Runtime, rt_b: Runtime, a_prip: str, issuer: str) -> None:
    """A publishes X (its publish step) and Y (ingest, which publishes EOFs itself) at the
    same time, X first, but X's transaction is held before its commit (another session has
    X's row locked) while Y's goes on. B polls in between and after, with no overlap, as
    the ICD's clients poll (`PublicationDate gt <the last date seen>`): B gets both, since
    A never shows a PublicationDate earlier than one it has shown."""
    environ = _poll_a_with_no_overlap(rt_b, a_prip, issuer)
    now = datetime.now(UTC).replace(microsecond=0)
    x = _packaged(rt_a, *demo_products.orbit_eof(
        "A", "AUX_RESORB", now - timedelta(hours=6), now - timedelta(hours=4),
        now - timedelta(hours=4), step_s=300))
    y_name, y_body = demo_products.orbit_eof("B", "AUX_RESORB", now - timedelta(hours=3),
                                             now - timedelta(hours=1),
                                             now - timedelta(hours=1), step_s=300)
    storage.put_bytes(rt_a.s3, A_INBOX, y_name, y_body)
    y_arrived = FileArrived(bucket=A_INBOX, key=y_name, size=len(y_body),
                            arrived_at=datetime.now(UTC))

    with psycopg.connect(rt_a.settings.database_url) as holder:
        holder.execute("SELECT 1 FROM products WHERE id = %s FOR UPDATE", (x.product_id,))
        x_thread = _Started(lambda: publication.publish(rt_a, x))
        _wait_for_waiting(rt_a, "UPDATE products SET status = 'published'")
        y_thread = _Started(lambda: ingest.ingest(rt_a, y_arrived, str(uuid.uuid4())))
        deadline = time.monotonic() + 30
        # Y either commits or waits for X (the clock's lock): both are states to poll in.
        while y_thread.is_alive() and not _waiting(rt_a, "INSERT INTO publication_clock"):
            assert time.monotonic() < deadline, "ingest of Y neither ended nor waited"
            time.sleep(0.05)
        [between] = polling.poll_all(rt_b, environ)
        holder.rollback()  # X's publication goes on
    for thread in (x_thread, y_thread):
        thread.join(30)
        assert not thread.is_alive() and thread.error is None, thread.error
    [after] = polling.poll_all(rt_b, environ, force=True)
    assert (between.status, after.status) == ("polled", "polled")
    a_published = _published(rt_a)
    assert list(a_published) == [x.name, y_name]  # X's date is the earlier one
    assert between.fetched + after.fetched == 2, (between, after)
    drain(rt_b)
    assert _published(rt_b) == a_published


def _packaged(rt: Runtime, name: str, body: bytes) -> ProductPackaged:
    """A product of A as package leaves it (bytes in the archive, row 'packaged'), and the
    event publish takes it from."""
    product_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
    key = f"routing-test/{name}"
    storage.put_bytes(rt.s3, rt.settings.archive_bucket, key, body)
    now = datetime.now(UTC)
    sums = of_bytes(body)
    with psycopg.connect(rt.settings.database_url, autocommit=True) as conn:
        products.insert_ingested(conn, products.NewProduct(
            id=product_id, logical_name=name, product_type="AUX_RESORB",
            platform_serial="A", fingerprint=sums.md5, layout="file", archive_key=key,
            content_length=len(body), checksums=sums.as_odata(now),
            content_start=now - timedelta(days=1), content_end=now, origin_date=now,
            attributes={"productType": "AUX_RESORB"}))
        products.mark_packaged(conn, product_id, name=name, distribution_key=key,
                               content_type="application/octet-stream",
                               content_length=len(body), checksums=sums.as_odata(now))
    return ProductPackaged(
        product_id=product_id, name=name, product_type="AUX_RESORB",
        archive_bucket=rt.settings.archive_bucket, distribution_key=key,
        content_type="application/octet-stream", content_length=len(body),
        checksums=[Checksum(algorithm="MD5", value=sums.md5)], packaged_at=now)


class _Started(threading.Thread):
    """A call run in a thread of its own; `error` is what it raised."""

    def __init__(self, call: Any) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.call()
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error


def _waiting(rt: Runtime, statement: str) -> bool:
    """Whether a session of A waits for a lock in a statement that starts so."""
    with psycopg.connect(rt.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                           " current_database() AND wait_event_type = 'Lock'"
                           " AND starts_with(query, %s)", (statement,)).fetchone()
    return bool(row and row[0])


def _wait_for_waiting(rt: Runtime, statement: str) -> None:
    deadline = time.monotonic() + 30
    while not _waiting(rt, statement):
        assert time.monotonic() < deadline, f"no session waits in {statement!r}"
        time.sleep(0.05)


def _poll_a_with_no_overlap(rt_b: Runtime, a_prip: str, issuer: str) -> dict[str, str]:
    """B's OData source for A, with no overlap (as the ICD's clients poll); the
    environment its secret comes from."""
    source = config.ODataSource(
        name="a", kind="odata", url=f"{a_prip}/odata/v1", page_size=10, overlap_s=0,
        start=datetime(2020, 1, 1, tzinfo=UTC),
        auth=config.OAuth2(token_url=f"{issuer}/protocol/openid-connect/token",
                           grant="client_credentials", client_id=CLIENT,
                           client_secret="${AUXIP_TEST_A_CLIENT_SECRET}"))
    with psycopg.connect(rt_b.settings.database_url, autocommit=True) as conn:
        sources_table.upsert(conn, config.source_row(source))
    return {"AUXIP_TEST_A_CLIENT_SECRET": CLIENT_SECRET}


def _state(rt: Runtime) -> dict:
    with psycopg.connect(rt.settings.database_url) as conn:
        return sources_table.get(conn, "a")["state"]  # type: ignore[index]


def _publication_of(rt: Runtime, name: str) -> str:
    return format_odata(_publication_date(rt, name))


def _publication_date(rt: Runtime, name: str) -> datetime:
    with psycopg.connect(rt.settings.database_url) as conn:
        row = conn.execute("SELECT publication_date FROM products WHERE name = %s",
                           (name,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_tokens_are_renewed_when_they_expire(issuer: str) -> None:
    """Against the real issuer: a token is kept while valid, renewed by the refresh token
    (password grant) or granted anew (client credentials), and dropped on a refusal."""
    clock = [1000.0]
    token_url = f"{issuer}/protocol/openid-connect/token"

    def client(secret: str, http: httpx.Client, **grant: str) -> TokenClient:
        reference = "${AUXIP_TEST_SECRET}"
        fields = ({"password": reference} if grant["grant"] == "password"
                  else {"client_secret": reference})
        model = config.OAuth2(token_url=token_url, **grant, **fields)  # type: ignore[arg-type]
        return TokenClient(config.expand(model, {"AUXIP_TEST_SECRET": secret}), http,
                           clock=lambda: clock[0])

    with httpx.Client(timeout=10) as http:
        people = client("mirror-pw", http, grant="password", client_id="auxip-poll",
                        username="mirror")
        service = client(CLIENT_SECRET, http, grant="client_credentials", client_id=CLIENT)
        first = people.authorization(), service.authorization()
        clock[0] += TOKEN_LIFETIME_S * 0.5
        assert (people.authorization(), service.authorization()) == first
        assert (people.grants, service.grants) == (1, 1)
        clock[0] += TOKEN_LIFETIME_S  # past expiry
        time.sleep(1.1)  # tokens carry whole seconds: a new one must differ
        assert people.authorization() != first[0] and service.authorization() != first[1]
        assert (people.grants, service.grants) == (2, 2)
        service.invalidate()  # the service said 401
        service.authorization()
        assert service.grants == 3
        wrong = client("not-the-secret", http, grant="client_credentials", client_id=CLIENT)
        with pytest.raises(TokenError, match="HTTP 401"):
            wrong.authorization()


def _ignore_errors(call: Any) -> None:
    try:
        call()
    except httpx.HTTPError:
        pass  # the process answering it was killed


def _seen(rt: Runtime) -> int:
    with psycopg.connect(rt.settings.database_url) as conn:
        return sources_table.seen_count(conn, "a")


def _wait_for_advisory_locks_to_go(rt: Runtime) -> None:
    """PostgreSQL ends a killed client's session (and its lock) when it notices the
    connection closed: usually at once."""
    deadline = time.monotonic() + 10
    with psycopg.connect(rt.settings.database_url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d"
                               " ON d.oid = l.database WHERE l.locktype = 'advisory'"
                               " AND d.datname = current_database()").fetchone()
            if row and row[0] == 0:
                return
            time.sleep(0.1)
    raise AssertionError("the killed poller's lock is still held")


def _last_publication(rt: Runtime) -> str:
    with psycopg.connect(rt.settings.database_url) as conn:
        row = conn.execute("SELECT max(publication_date) FROM products").fetchone()
    assert row is not None
    return format_odata(row[0])


def _distribution_key(rt: Runtime, name: str) -> str:
    with psycopg.connect(rt.settings.database_url) as conn:
        row = conn.execute("SELECT distribution_key FROM products WHERE name = %s",
                           (name,)).fetchone()
    assert row is not None
    return str(row[0])

