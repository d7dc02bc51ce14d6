"""The small HTTP habits OData clients of the field rely on, over real HTTP: conditional
GETs (`If-None-Match` → 304) for `$value` and `$metadata`, `Products/$count` as a path
segment, `Accept-Ranges`, and OData JSON error bodies for every refusal, those the
framework answers before prip's dispatch included."""

from __future__ import annotations

import hashlib

import pytest

from tests.prip.catalogue import BY_NUMBER, audit_rows, last_audit_id, pid

pytestmark = pytest.mark.usefixtures("seeded")


def value_path(number: int) -> str:
    return f"Products({pid(number)})/$value"


def is_odata_error(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


# --- If-None-Match -------------------------------------------------------------------------


def test_value_answers_304_to_the_etag_it_sent(api, settings):
    since = last_audit_id(settings)
    etag = api.get(value_path(3)).headers["ETag"]
    assert etag == f'"{hashlib.md5(BY_NUMBER[3].data()).hexdigest()}"'
    for sent in (etag, f"W/{etag}", f'"0000", {etag}', "*"):
        for method in ("GET", "HEAD"):
            answer = api.request(method, value_path(3), headers={"If-None-Match": sent})
            assert answer.status_code == 304, (sent, method)
            assert answer.headers["ETag"] == etag and answer.content == b""
    changed = api.get(value_path(3), headers={"If-None-Match": '"another-version"'})
    assert changed.status_code == 200 and changed.content == BY_NUMBER[3].data()
    # A 304 moves no byte and is no download: only the two 200s are in the audit trail.
    rows = audit_rows(settings, actor="alice", since_id=since, wait_for=2)
    assert [r["outcome"] for r in rows] == ["completed", "completed"]


def test_value_304_still_needs_a_reader(api):
    etag = api.get(value_path(3)).headers["ETag"]
    is_odata_error(api.get(value_path(3), user=None, headers={"If-None-Match": etag}), 401)


def test_metadata_sends_an_etag_and_answers_304_to_it(api):
    first = api.get("$metadata")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and first.text.startswith("<?xml")
    again = api.get("$metadata", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and again.content == b""
    assert api.get("$metadata", headers={"If-None-Match": '"old"'}).status_code == 200


# --- Products/$count ----------------------------------------------------------------------


def test_count_as_a_path_segment(api):
    everything = api.get("Products", params={"$count": "true", "$top": "0"}).json()
    total = api.get("Products/$count")
    assert total.status_code == 200 and total.headers["Content-Type"].startswith("text/plain")
    assert int(total.text) == everything["@odata.count"] > 0
    some = api.get("Products/$count", params={"$filter": "contains(Name,'AUX_CAL')"})
    listed = api.get("Products", params={"$filter": "contains(Name,'AUX_CAL')"}).json()["value"]
    assert int(some.text) == len(listed) > 0
    # $top and $skip do not shrink a count.
    assert api.get("Products/$count", params={"$top": "1", "$skip": "1"}).text == total.text
    is_odata_error(api.get("Products/$count", params={"$filter": "Name eq"}), 400)


# --- Accept-Ranges ------------------------------------------------------------------------


def test_downloads_say_they_accept_ranges(api):
    head = api.request("HEAD", value_path(1))
    assert head.status_code == 200 and head.headers["Accept-Ranges"] == "bytes"
    part = api.get(value_path(1), headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.headers["Accept-Ranges"] == "bytes"
    assert part.content == BY_NUMBER[1].data()[:10]


# --- OData error bodies everywhere ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico", "/", "/odata", "/odata/v2",
                                  "/odata/v1/Nothing", "/odata/v1/Products/Nothing"])
def test_unknown_paths_are_404_odata_errors(api, http, prip, path):
    is_odata_error(http.get(prip.base + path, headers=api.headers("alice")), 404, "NotFound")


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "Products", "GET, HEAD"),
    ("POST", "$metadata", "GET, HEAD"),
    ("PUT", "Products/$count", "GET, HEAD"),
    ("OPTIONS", "Products", "GET, HEAD"),
    ("PATCH", "Subscriptions", "GET, POST, HEAD"),
    ("POST", f"Products({pid(1)})/$value", "GET, HEAD"),
])
def test_wrong_methods_are_405_odata_errors_with_allow(api, method, path, allow):
    answer = api.request(method, path)
    is_odata_error(answer, 405, "MethodNotAllowed")
    assert answer.headers["Allow"] == allow
