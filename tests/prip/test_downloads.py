"""`Products(<Id>)/$value` over HTTP: exact bytes, ranges, checksum headers, the presigned
redirect, the per-user parallel-download quota (also across two processes: this one and a
functions-framework/gunicorn subprocess) and the audit trail of every download."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from shared.adapters import storage
from shared.adapters.telemetry import metrics
from shared.prip import downloads
from tests.prip.catalogue import (
    BIG,
    BIG_SIZE,
    BY_NUMBER,
    Product,
    audit_rows,
    last_audit_id,
    pid,
)
from tests.prip.conftest import MAX_PARALLEL, REPO, reset_caches

pytestmark = pytest.mark.usefixtures("seeded")


def value_path(number: int) -> str:
    return f"Products({pid(number)})/$value"


# --- whole products ------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 13, 20, 27])
def test_download_gives_the_archived_bytes_and_headers(api, number):
    product = BY_NUMBER[number]
    data = product.data()
    answer = api.get(value_path(number))
    assert answer.status_code == 200
    assert answer.content == data
    md5 = hashlib.md5(data).hexdigest()
    headers = answer.headers
    assert headers["Content-Length"] == str(len(data))
    assert headers["Content-Type"] == product.content_type
    assert headers["Content-Disposition"] == f"attachment; filename={product.name}"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{md5}"'
    assert headers["X-Checksum-MD5"] == md5
    assert headers["Digest"] == "md5=" + base64.b64encode(hashlib.md5(data).digest()).decode()
    assert "X-Checksum-XXH3-128" in headers


def test_head_gives_the_headers_only_and_is_not_audited(api, settings):
    # The streams of the tests before may still be writing their rows: wait them out.
    before, quiet_since = last_audit_id(settings), time.monotonic()
    while time.monotonic() - quiet_since < 0.5:
        time.sleep(0.1)
        if (latest := last_audit_id(settings)) != before:
            before, quiet_since = latest, time.monotonic()
    answer = api.request("HEAD", value_path(13))
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["Content-Length"] == str(BY_NUMBER[13].size)
    assert answer.headers["ETag"].startswith('"')
    assert audit_rows(settings, actor="alice", since_id=before) == []


def test_downloads_are_audited_with_bytes_sent_and_never_the_token(api, settings):
    before = last_audit_id(settings)
    api.get(value_path(3))
    token = api.issuer.token("alice")
    via_query = api.http.get(f"{api.root}/{value_path(20)}", params={"token": token})
    assert via_query.status_code == 200 and via_query.content == BY_NUMBER[20].data()
    api.get(value_path(13), headers={"Range": "bytes=100-199"})
    rows = audit_rows(settings, actor="alice", since_id=before, wait_for=3)
    assert [(r["action"], r["product_id"], r["outcome"], r["bytes_sent"], r["range_spec"])
            for r in rows] == [
        ("download", pid(3), "completed", BY_NUMBER[3].size, None),
        ("download", pid(20), "completed", BY_NUMBER[20].size, None),
        ("download", pid(13), "partial", 100, "bytes=100-199"),
    ]
    assert all(r["client_address"] == "127.0.0.1" for r in rows)
    assert rows[0]["details"]["subject"] and rows[0]["details"]["name"] == BY_NUMBER[3].name
    with psycopg.connect(settings.database_url) as conn:
        everything = conn.execute("SELECT string_agg(audit_log::text, ' ') FROM audit_log"
                                  ).fetchone()[0]
    assert token not in everything and token.split(".")[2] not in everything


# --- ranges --------------------------------------------------------------------------------

SIZE = BY_NUMBER[13].size  # 44100
RANGES = [
    ("bytes=0-99", 206, slice(0, 100)),
    ("bytes=100-", 206, slice(100, None)),
    ("bytes=-500", 206, slice(SIZE - 500, None)),
    ("bytes=44000-50000", 206, slice(44000, None)),  # across the end: up to the end
    ("bytes=-50000", 206, slice(0, None)),  # a suffix longer than the product: all of it
    ("bytes=44099-44099", 206, slice(44099, None)),
    ("bytes=10-5", 200, slice(None)),  # invalid: ignored
    ("bytes=0-1,5-6", 200, slice(None)),  # several ranges: the whole product
    ("items=0-5", 200, slice(None)),  # another unit: ignored
]


@pytest.mark.parametrize(("header", "status", "part"), RANGES, ids=[r[0] for r in RANGES])
def test_ranges(api, header, status, part):
    data = BY_NUMBER[13].data()
    answer = api.get(value_path(13), headers={"Range": header})
    assert answer.status_code == status
    assert answer.content == data[part]
    assert answer.headers["Content-Length"] == str(len(data[part]))
    if status == 206:
        first = part.start or 0
        assert answer.headers["Content-Range"] == (
            f"bytes {first}-{first + len(data[part]) - 1}/{SIZE}")
    else:
        assert "Content-Range" not in answer.headers


@pytest.mark.parametrize("header", ["bytes=44100-", "bytes=50000-60000", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(api, header):
    answer = api.get(value_path(13), headers={"Range": header})
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{SIZE}"
    assert answer.json()["error"]["code"] == "RangeNotSatisfiable"


def test_if_range(api):
    etag = api.request("HEAD", value_path(13)).headers["ETag"]
    same = api.get(value_path(13), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206 and len(same.content) == 10
    stale = api.get(value_path(13), headers={"Range": "bytes=0-9", "If-Range": '"0000"'})
    assert stale.status_code == 200 and len(stale.content) == SIZE


# --- refusals ------------------------------------------------------------------------------


def test_offline_product_is_410(api, settings):
    before = last_audit_id(settings)
    answer = api.get(value_path(4))
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "ProductOffline"
    # Only this product's rows: the stream of a previous test may be audited just now.
    rows = audit_rows(settings, actor="alice", since_id=before)
    assert [r["outcome"] for r in rows if r["product_id"] == pid(4)] == ["offline"]


@pytest.fixture
def damaged(settings, s3) -> Iterator[Product]:
    """Product 13, whose archive object a test deletes or replaces; put back afterwards."""
    product = BY_NUMBER[13]
    yield product
    storage.put_bytes(s3, settings.archive_bucket, product.key, product.data(),
                      content_type=product.content_type)


def _disagreements(kind: str) -> float:
    return metrics.ARCHIVE_DISAGREEMENTS.labels("download", kind)._value.get()


def test_a_catalogued_product_whose_bytes_are_gone_is_503_not_500(api, settings, s3, damaged):
    before = last_audit_id(settings)
    missing_before, size_before = _disagreements("missing"), _disagreements("size")
    storage.delete(s3, settings.archive_bucket, damaged.key)
    for method in ("GET", "HEAD"):
        answer = api.request(method, value_path(13))
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == str(downloads.UNAVAILABLE_RETRY_S)
        if method == "GET":
            assert answer.json()["error"]["code"] == "ProductUnavailable"
            assert damaged.name in answer.json()["error"]["message"]
    ranged = api.get(value_path(13), headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 503
    assert _disagreements("missing") == missing_before + 3
    rows = audit_rows(settings, actor="alice", since_id=before, wait_for=2)
    mine = [r for r in rows if r["product_id"] == pid(13)]
    assert [r["outcome"] for r in mine] == ["unavailable", "unavailable"]  # HEAD: no row
    assert mine[0]["details"]["archive"] == "missing"

    # Bytes of another length under its key: never served as the product.
    storage.put_bytes(s3, settings.archive_bucket, damaged.key, damaged.data()[:-100])
    whole = api.get(value_path(13))
    assert whole.status_code == 503 and whole.json()["error"]["code"] == "ProductUnavailable"
    past_the_end = api.get(value_path(13), headers={"Range": f"bytes={damaged.size - 50}-"})
    assert past_the_end.status_code == 503
    assert _disagreements("size") == size_before + 2
    # The catalogue still lists it: the listing does not read the archive.
    assert api.get(f"Products({pid(13)})").status_code == 200


def test_the_redirect_checks_the_object_too(api, settings, s3, damaged, redirect_mode):
    storage.delete(s3, settings.archive_bucket, damaged.key)
    answer = api.get(value_path(13))
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "ProductUnavailable"


def test_downloads_need_a_reader(api):
    anonymous = api.get(value_path(1), user=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer realm="auxip"')
    not_a_reader = api.get(value_path(1), user="sam")
    assert not_a_reader.status_code == 403
    assert not_a_reader.json()["error"]["code"] == "insufficient_scope"


def test_query_token_is_for_downloads_only(api):
    token = api.issuer.token("alice")
    catalogue = api.http.get(f"{api.root}/Products", params={"token": token})
    assert catalogue.status_code == 401
    assert "WWW-Authenticate" in catalogue.headers


# --- the presigned redirect ----------------------------------------------------------------


@pytest.fixture
def redirect_mode(function_env) -> Iterator[None]:
    os.environ["AUXIP_DOWNLOAD_REDIRECT"] = "true"
    reset_caches()
    yield
    del os.environ["AUXIP_DOWNLOAD_REDIRECT"]
    reset_caches()


def test_redirect_to_a_presigned_url_gives_the_same_bytes(api, redirect_mode, http, settings):
    before = last_audit_id(settings)
    answer = api.get(value_path(14))
    assert answer.status_code == 307
    location = answer.headers["Location"]
    assert location.startswith(settings.s3_endpoint) and "Signature" in location
    assert answer.headers["ETag"] == f'"{hashlib.md5(BY_NUMBER[14].data()).hexdigest()}"'
    fetched = http.get(location)  # no credentials: the URL is the permission
    assert fetched.status_code == 200
    assert fetched.content == BY_NUMBER[14].data()
    assert fetched.headers["Content-Disposition"] == f"attachment; filename={BY_NUMBER[14].name}"
    partial = http.get(location, headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206 and partial.content == BY_NUMBER[14].data()[10:20]
    assert [r["outcome"] for r in audit_rows(settings, actor="alice", since_id=before)] == [
        "redirected"]
    assert api.get(value_path(14), user=None).status_code == 401


# --- parallel-download quota ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def second_process(function_env) -> Iterator[str]:
    """prip in a functions-framework process of its own (gunicorn, as in production)."""
    port = _free_port()
    log = Path(function_env.get("AUXIP_STATE_DIR", "/tmp")) / "prip-test-gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "functions-framework"), "--target", "handle",
             "--source", str(REPO / "functions" / "prip" / "main.py"),
             "--host", "127.0.0.1", "--port", str(port)],
            env=function_env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/odata/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prip subprocess did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _open(stack: contextlib.ExitStack, api, user: str) -> httpx.Response:
    """A download whose body we do not read: the server blocks writing it, slot held."""
    response = stack.enter_context(api.http.stream(
        "GET", f"{api.root}/{value_path(BIG)}", headers=api.headers(user)))
    return response


def test_parallel_downloads_per_user(api, settings, second_process):
    before = last_audit_id(settings)
    big = BY_NUMBER[BIG].data()
    with contextlib.ExitStack() as held:
        streams = [_open(held, api, "alice") for _ in range(MAX_PARALLEL)]
        assert [s.status_code for s in streams] == [200] * MAX_PARALLEL

        extra = api.get(value_path(1))
        assert extra.status_code == 429
        assert extra.headers["Retry-After"].isdigit()
        assert extra.json()["error"]["code"] == "TooManyParallelDownloads"
        # Another process (another gunicorn worker or pod) sees the same slots.
        elsewhere = httpx.get(f"{second_process}/{value_path(1)}", headers=api.headers("alice"))
        assert elsewhere.status_code == 429

        # Another user is unaffected, in either process.
        bob = api.get(value_path(BIG), user="bob")
        assert bob.status_code == 200 and hashlib.md5(bob.content).digest() == \
            hashlib.md5(big).digest()
        assert httpx.get(f"{second_process}/{value_path(1)}",
                         headers=api.headers("bob")).status_code == 200

        # A client that goes away gives its slot back.
        streams[0].close()
        deadline = time.monotonic() + 5
        while (again := api.get(value_path(3))).status_code == 429:
            assert time.monotonic() < deadline, "the slot of a closed download never came back"
            time.sleep(0.05)
        assert again.status_code == 200 and again.content == BY_NUMBER[3].data()

        # Read one of the held downloads to its end: exact bytes; slot back afterwards.
        assert b"".join(streams[1].iter_bytes()) == big
    # Every stream closed: all slots free again, here and in the other process.
    deadline = time.monotonic() + 5
    while httpx.get(f"{second_process}/{value_path(3)}",
                    headers=api.headers("alice")).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # The same under gunicorn: slots held there count here, and come back on disconnect.
    with contextlib.ExitStack() as held:
        there = [held.enter_context(httpx.stream(
            "GET", f"{second_process}/{value_path(BIG)}", headers=api.headers("alice"),
            timeout=30)) for _ in range(MAX_PARALLEL)]
        assert [s.status_code for s in there] == [200] * MAX_PARALLEL
        assert api.get(value_path(1)).status_code == 429
    deadline = time.monotonic() + 5
    while api.get(value_path(1)).status_code == 429:
        assert time.monotonic() < deadline, "gunicorn never gave the slots back"
        time.sleep(0.05)

    # At least 3 refusals, 2 * MAX_PARALLEL - 1 aborted streams and the completed ones: the
    # last aborted rows are written by the servers after the clients went, so wait for
    # those (a count of all rows would be reached early by the polls' extra rows).
    deadline = time.monotonic() + 30
    while True:
        rows = audit_rows(settings, actor="alice", since_id=before)
        if (sum(r["outcome"] == "aborted" for r in rows) >= 2 * MAX_PARALLEL - 1
                or time.monotonic() > deadline):
            break
        time.sleep(0.05)
    outcomes = [(r["product_id"], r["outcome"]) for r in rows]
    assert outcomes.count((pid(1), "quota_exceeded")) >= 3
    assert outcomes.count((pid(BIG), "completed")) == 1
    aborted = [r for r in rows if r["outcome"] == "aborted"]
    assert len(aborted) == 2 * MAX_PARALLEL - 1
    assert all(0 <= r["bytes_sent"] < BIG_SIZE for r in aborted)
