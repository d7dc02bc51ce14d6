"""Property-based: hostile or random query options raise nothing but ODataError, and what
is accepted reaches PostgreSQL only as parameters: the SQL text is made of a fixed
vocabulary, and it runs without a database error."""

from __future__ import annotations

import re

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.odata import build_products_query, fetch_products, matches, parse_query_options
from shared.odata.errors import ODataError
from tests.odata.test_agreement import filters

# Every word and quoted constant the compiler may write; anything else in the SQL text
# would have come from the client.
ALLOWED_WORDS = set("""
SELECT FROM WHERE AND OR NOT ORDER BY ASC DESC LIMIT OFFSET AS IS NULL TRUE FALSE LIKE ANY
EXISTS CASE WHEN THEN ELSE END COALESCE COLLATE C count products status id name content_type
content_length checksums content_start content_end origin_date publication_date
modification_date eviction_date online product_type platform_serial attributes
jsonb_each jsonb_typeof a key value text numeric boolean bigint timestamptz uuid jsonb
tstzrange strpos lower upper
""".split())
ALLOWED_QUOTED = {"'published'", "'[]'", "'()'", "'(]'", "'[)'", "'string'", "'number'",
                  "'boolean'", "'object'", "'{}'", "'.'"}
_QUOTED = re.compile(r"'[^']*'")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def assert_safe(text: str, params: tuple) -> None:
    assert text.count("%s") == len(params), text
    for quoted in _QUOTED.findall(text):
        assert quoted in ALLOWED_QUOTED, quoted
    bare = _QUOTED.sub(" ", text)
    assert "'" not in bare and ";" not in bare and "--" not in bare and "/*" not in bare
    words = set(_WORD.findall(bare.replace("%s", " ")))
    assert words <= ALLOWED_WORDS, words - ALLOWED_WORDS


def accept_or_refuse(conn: psycopg.Connection, params) -> None:
    try:
        options = parse_query_options(params)
    except ODataError as refused:
        assert refused.status == 400 and refused.code and refused.message
        return
    query = build_products_query(options)
    assert_safe(query.select.as_string(conn), query.params)
    if query.count is not None:
        assert_safe(query.count.as_string(conn), query.count_params)
    fetch_products(conn, options)  # no database error either


HOSTILE = [
    "'", "''", "'''", ";", "--", "/*", "*/", "\\", "%", "_", "\x00", "\u202e", "\U0001f600",
    "é", "ß", "İ", "Name", "eq", "ne", "gt", "in", "and", "or", "not", "(", ")", ",", "/",
    ":", " ", "  ", "\t", "\n", "Online", "ContentLength", "ContentDate/Start", "Id",
    "contains(", "startswith(Name,", "tolower(", "Attributes/OData.CSC.StringAttribute/any(",
    "Attributes/OData.CSC.IntegerAttribute/all(", "att:", "att/Name", "att/Value",
    "att/OData.CSC.StringAttribute/Value", "'x'", "'S1A'", "' OR 1=1 --", "'; DROP TABLE products; --",
    "1", "-1", "0", "9" * 30, "1e308", "1e-400", "1.5", "NaN", "INF", "null", "true", "false",
    "2021-02-25T22:59:42.000Z", "2021-02-25T22:59:42+14:00", "9999-12-31T23:59:59.999Z",
    "0000-00-00T00:00:00Z", "8f1c2a3b-0000-4000-8000-00000000abcd", "guid'", "datetime'",
    "$filter", "%s", "%(x)s", "{}", "{0}", "E'", "$$", "\"", "`",
]
hostile_text = st.lists(st.sampled_from(HOSTILE), max_size=25).map("".join)
spaced_hostile = st.lists(st.sampled_from(HOSTILE), max_size=25).map(" ".join)
any_text = st.text(max_size=200)


@st.composite
def mutated_filter(draw) -> str:
    """A valid filter with characters inserted, deleted or replaced: near misses."""
    text = draw(filters)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.integers(0, 2))
        piece = draw(st.sampled_from(HOSTILE))
        if action == 0:
            text = text[:at] + piece + text[at:]
        elif action == 1:
            text = text[:at] + text[at + draw(st.integers(1, 5)):]
        else:
            text = text[:at] + piece + text[at + len(piece):]
    return text


nested = st.builds(
    lambda opening, depth, core, closing: opening * depth + core + closing * depth,
    st.sampled_from(["(", "not ", "not (", "Online and (", "Attributes/OData.CSC.StringAttribute/any(a:"]),
    st.integers(0, 400),
    st.sampled_from(["Online", "Name eq 'x'", "a/Name eq 'x'", ""]),
    st.sampled_from([")", "", " and Online)"]),
)
filter_texts = st.one_of(any_text, hostile_text, spaced_hostile, mutated_filter(), nested)

SETTINGS = settings(max_examples=500, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(text=filter_texts)
def test_hostile_filters(conn, text):
    accept_or_refuse(conn, {"$filter": text})


option_value = st.one_of(any_text, hostile_text, st.integers(-10**30, 10**30).map(str),
                         st.sampled_from(["Name asc", "ContentDate/Start desc, Id", "Attributes",
                                          "1000", "1001", "0", "-0", "+5", "true", "Assets",
                                          "Attributes,Assets", "json", "*", "Name,Id"]))
option_name = st.one_of(
    st.sampled_from(["$filter", "$orderby", "$top", "$skip", "$count", "$expand", "$select",
                     "$format", "$search", "$FILTER", "$Top", "filter", "top", "$", "$$",
                     "$skiptoken", "$apply"]),
    st.text(max_size=12).map(lambda s: "$" + s),
)


@SETTINGS
@given(params=st.lists(st.tuples(option_name, option_value), max_size=6))
def test_hostile_options(conn, params):
    accept_or_refuse(conn, params)


@pytest.mark.parametrize("literal", [
    "x' OR 1=1 --", "'; DROP TABLE products; --", "%", "_", "\\", "%s", "{}", "$$x$$",
    "robert'); DELETE FROM products; --", "é\u202eü", "\U0001f600",
])
def test_literals_travel_as_parameters(conn, rows, literal):
    quoted = "'" + literal.replace("'", "''") + "'"
    for text in (f"Name eq {quoted}", f"contains(Name,{quoted})", f"tolower(Name) eq {quoted}",
                 "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq " + quoted
                 + " and a/Value eq " + quoted + ")",
                 f"Attributes/OData.CSC.StringAttribute/any(a:a/Value in ({quoted}, 'b'))"):
        options = parse_query_options({"$filter": text, "$count": "true"})
        query = build_products_query(options)
        sql_text = query.select.as_string(conn)
        if len(literal) >= 3:  # shorter ones ('_', '{}') occur in column names, constants
            assert literal not in sql_text
        assert_safe(sql_text, query.params)
        found = {r["id"] for r in fetch_products(conn, options).rows}
        assert found == {r["id"] for r in rows
                         if r["status"] == "published" and matches(options.filter, r)}
    assert (conn.execute("SELECT count(*) FROM products").fetchone() or [0])[0] == 35
