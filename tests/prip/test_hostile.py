"""Property-based: whatever a client sends (query options, paths, headers, Subscription
bodies), prip answers below 500, and every refusal is a well-formed OData error body."""

from __future__ import annotations

import json
import re
import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.prip.catalogue import pid

pytestmark = pytest.mark.usefixtures("seeded")

PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])

# No lone surrogates: they cannot travel in a URL or a JSON body at all.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
TOKENS = ["Name", "ContentLength", "PublicationDate", "ContentDate/Start", "ContentDate/End",
          "Online", "Id", "Attributes", "OData.CSC.StringAttribute", "any(", "all(", "att:",
          "att/Name", "att/OData.CSC.DoubleAttribute/Value", "eq", "ne", "lt", "ge", "and",
          "or", "not", "in", "(", ")", ",", "/", "'AUX_CAL'", "'", "''", "2021-02-25T22:59:42Z",
          "'2021-02-25T22:59:42.000Z'", "9999-12-31T23:59:59.999Z", "0", "-1", "1e308", "1.5",
          "99999999999999999999", "true", "null", "contains(", "startswith(", "endswith(",
          "tolower(", str(pid(1)), "%", "\\", "\x00", "é", "Collection/Name", "$it", "@p"]
GRAMMARISH = st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join)
FILTERS = st.one_of(TEXT, GRAMMARISH, st.integers(0, 3000).map(lambda n: "(" * n + ")" * n),
                    st.integers(0, 400).map(lambda n: "not " * n + "Online"))
ORDERBYS = st.one_of(TEXT, st.lists(st.sampled_from(
    ["Name", "Id", "ContentLength", "ContentDate/Start", "Attributes", "asc", "desc", ",",
     " ", "Foo", "name"]), max_size=12).map("".join))
NUMBERS = st.one_of(TEXT, st.integers().map(str), st.integers(-10, 2000).map(str),
                    st.sampled_from(["", " ", "+5", "1.0", "0x10", "9" * 40, "٣", "1e3"]))
SEGMENT_SAFE = "()'/=$%"
OPTION_NAMES = st.sampled_from(["$filter", "$orderby", "$top", "$skip", "$count", "$expand",
                                "$select", "$format", "$search", "$FILTER", "$", "token",
                                "$apply", "$skiptoken"])


def assert_well_formed(answer) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]


@PROPERTY_SETTINGS
@given(text=FILTERS)
def test_any_filter(api, text):
    answer = api.products(filter=text, top="5")
    assert_well_formed(answer)


@PROPERTY_SETTINGS
@given(orderby=ORDERBYS, top=NUMBERS, skip=NUMBERS)
def test_any_orderby_top_skip(api, orderby, top, skip):
    assert_well_formed(api.products(orderby=orderby, top=top, skip=skip))


@PROPERTY_SETTINGS
@given(options=st.lists(st.tuples(OPTION_NAMES, TEXT), max_size=6))
def test_any_option_mix(api, options):
    assert_well_formed(api.get("Products", params=options))
    assert_well_formed(api.get(f"Products({pid(2)})", params=options))


@PROPERTY_SETTINGS
@given(segment=st.one_of(TEXT, st.sampled_from(["Products(", "Products()", "Products('')",
                                                 "Products(Id=)", "Subscriptions(x)/y",
                                                 "Products(1)/$value", "%00", "..", "//"])),
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
def test_any_path_and_method(api, segment, method):
    # Percent-encoded, so that whatever the segment holds reaches the server.
    answer = api.http.request(method, f"{api.root}/{quote(segment, safe=SEGMENT_SAFE)}",
                              headers=api.headers("bob"))
    assert answer.status_code < 500, answer.text
    if method != "HEAD" and answer.status_code >= 400:
        assert_well_formed(answer)


@PROPERTY_SETTINGS
@given(header=st.one_of(TEXT, st.tuples(st.integers(-5, 50_000), st.integers(-5, 50_000))
                        .map(lambda r: f"bytes={r[0]}-{r[1]}"),
                        st.integers(-5, 50_000).map(lambda n: f"bytes=-{n}"),
                        st.integers(0, 50_000).map(lambda n: f"bytes={n}-")))
def test_any_range_header(api, header):
    # What HTTP/1.1 can carry in a header value at all (latin-1, no control characters).
    raw = re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", "", header).strip(" \t")
    answer = api.get(f"Products({pid(3)})/$value",
                     headers={"Range": raw.encode("latin-1", "replace")})
    assert_well_formed(answer)
    assert answer.status_code in (200, 206, 416)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)
FIELDS = st.sampled_from(["FilterParam", "NotificationEndpoint", "NotificationEpUsername",
                          "NotificationEpPassword", "Status", "SubscriptionEvent",
                          "SubscriptionType", "Id", "@odata.context", "Extra"])
VALUES = st.one_of(JSON, FILTERS, st.sampled_from(
    ["https://x.example.org/n", "http://[::1]:80/", "http://x:99999/", "javascript:alert(1)",
     "running", "PAUSED", "cancelled", "created", "deleted", "push", "pull"]))
BODIES = st.one_of(
    st.dictionaries(FIELDS, VALUES, max_size=8).map(lambda d: json.dumps(d).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(string.printable, max_size=200).map(str.encode),
)


@PROPERTY_SETTINGS
@given(raw=BODIES)
def test_any_subscription_body(api, raw):
    created = api.request("POST", "Subscriptions", "carol", content=raw,
                          headers={"Content-Type": "application/json"})
    assert_well_formed(created)
    if created.status_code == 201:
        path = f"Subscriptions({created.json()['Id']})"
        assert_well_formed(api.request("PATCH", path, "carol", content=raw))
        assert api.request("DELETE", path, "carol").status_code == 204
