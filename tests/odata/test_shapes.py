"""Filter shapes (shared/odata/shapes.py): a text of a known shape with other literals gets
the AST, SQL text and parameters the uncached parse and build give it, or the same error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.odata import ODataError, fetch_products, parse_query_options, products_query
from shared.odata import parser as odata_parser
from shared.odata.binder import bind
from shared.odata.options import QueryOptions, parse_orderby
from shared.odata.raw import RawLiteral
from shared.odata.shapes import SLOT_TOKENS, _nodes, same, scan
from tests.odata.test_agreement import filters, validity_filters

CALIBRATION = (
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
    "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL') and "
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'platformSerialIdentifier' and "
    "att/OData.CSC.StringAttribute/Value eq 'A') and "
    "Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'beginningDateTime' and "
    "att/OData.CSC.DateTimeOffsetAttribute/Value le {})")
OTHER_OPTIONS = st.sampled_from([
    {}, {"$orderby": "ContentDate/Start desc", "$top": "1"},
    {"$count": "true", "$top": "0"}, {"$orderby": "PublicationDate asc", "$skip": "20"},
    {"$expand": "Attributes", "$count": "true"}])


def _instant(draw) -> str:
    value = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 40 * 365 * 86400 * 10**6)))
    form = draw(st.integers(0, 4))
    if form == 0:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if form == 1:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 2:
        return value.strftime("%Y-%m-%dT%H:%M") + "+05:30"
    if form == 3:
        return "9999-12-31T23:59:59.999Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")  # no offset: read as UTC


@st.composite
def literal_of(draw, token: str) -> str:
    """Another literal the same terminal matches: mostly valid, sometimes not."""
    wrong = draw(st.integers(0, 9)) == 0
    if token == "DATETIME":
        return "2021-13-45T25:61:00Z" if wrong else _instant(draw)
    if token == "INT":
        if wrong:
            return draw(st.sampled_from(["9223372036854775808", "-9223372036854775809",
                                         "1" * 70]))
        return str(draw(st.integers(-10**6, 10**12)))
    if token == "DECIMAL":
        if wrong:
            return draw(st.sampled_from(["1e5000", "1" * 70 + ".5"]))
        return draw(st.sampled_from(["0.05", "2.5E-2", "1e4", "-3.25", "36515.0", "1e500",
                                     "-2.5e-400", "0.1000000000000000000000000000001"]))
    if token == "GUID":
        return str(UUID(int=draw(st.integers(0, 2**128 - 1))))
    # TYPED: of either type (the other one gives another kind), or not valid inside.
    if wrong:
        return draw(st.sampled_from(["datetime'2021-02-30T00:00:00Z'", "guid'nope'"]))
    if draw(st.booleans()):
        return f"guid'{UUID(int=draw(st.integers(0, 2**128 - 1)))}'"
    return f"datetimeoffset'{_instant(draw)}'"


@st.composite
def relettered(draw, text: str) -> str:
    """`text` with each slot replaced by another literal of its terminal."""
    scanned = scan(text, odata_parser._scanner())
    pieces, tokens = scanned.key
    out = [pieces[0]]
    for token, piece in zip(tokens, pieces[1:], strict=True):
        out += [draw(literal_of(token)), piece]
    return "".join(out)


def _uncached(params: dict[str, str]):
    """What the request gets without any cache: options, statements, or the error."""
    try:
        text = params["$filter"]
        node = bind(odata_parser._parse_raw(text))
        options = QueryOptions(
            filter=node, filter_text=text, top=int(params.get("$top", 1000)),
            skip=int(params.get("$skip", 0)), count=params.get("$count") == "true",
            orderby=parse_orderby(params.get("$orderby", "")),
            expand_attributes="$expand" in params)
    except ODataError as error:
        return error.code, error.message
    return options, products_query._rendered(options)


def _cached(params: dict[str, str]):
    try:
        options = parse_query_options(params)
    except ODataError as error:
        return error.code, error.message
    return options, products_query._statements(options)


def _assert_same(got, want) -> None:
    if isinstance(want, tuple) and isinstance(want[0], str):
        assert got == want  # the same error, code and message
        return
    (options, statements), (expected, rendered) = got, want
    assert options.filter == expected.filter
    assert statements.select == rendered.select
    assert statements.count == rendered.count
    assert same(list(statements.params), list(rendered.params))
    assert same(list(statements.count_params), list(rendered.count_params))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(filters, validity_filters).flatmap(
    lambda text: st.tuples(st.just(text), relettered(text), relettered(text))), OTHER_OPTIONS)
def test_a_known_shape_with_other_literals_is_what_the_uncached_path_makes(texts, other):
    first, *others = texts
    for text in (first, *others, first):  # the first one makes the shape
        params = {"$filter": text, **other}
        _assert_same(_cached(params), _uncached(params))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_calibration_in_force_takes_the_shape_and_its_statements(data):
    literal = data.draw(literal_of("DATETIME"))
    params = {"$filter": CALIBRATION.format(literal), "$orderby": "ContentDate/Start desc",
              "$top": "1"}
    got = _cached(params)
    _assert_same(got, _uncached(params))
    if not isinstance(got[0], str):
        assert got[0].filter_slots is not None


def test_a_shape_serves_fresh_literals_from_its_kept_statements():
    params = {"$filter": CALIBRATION.format("2019-01-01T00:00:00Z"), "$top": "1"}
    parse_query_options(params)  # makes the shape
    options = parse_query_options({**params, "$filter": CALIBRATION.format(
        "2020-06-30T12:00:00.5Z")})
    assert options.filter_slots is not None
    assert options.filter_slots.values[0] == datetime(2020, 6, 30, 12, 0, 0, 500000, UTC)
    statements = products_query._statements(options)
    assert "2020-06-30T12:00:00.500000Z" in statements.params  # the canonical attribute text
    assert "2019-01-01T00:00:00.000000Z" not in statements.params


@pytest.mark.parametrize("literal, message", [
    ("2021-02-30T00:00:00Z", "not a valid DateTimeOffset: '2021-02-30T00:00:00Z'"),
    ("datetime'2021-02-25T00:00:00'", None),
    ("guid'0b4b6bd3-5a52-4d8f-a0c3-1b2b3c4d5e6f'", "needs a DateTimeOffset"),
    ("12", "needs a DateTimeOffset"),
])
def test_a_bad_literal_in_a_known_shape_is_refused_as_ever_and_not_kept(literal, message):
    template = "PublicationDate gt {} and ContentLength lt 5"
    parse_query_options({"$filter": template.format("2019-01-01T00:00:00Z")})
    params = {"$filter": template.format(literal)}
    want = _uncached(params)
    for _ in range(2):
        _assert_same(_cached(params), want)
    if message is not None:
        assert message in want[1]
    fine = {"$filter": template.format("2019-05-01T00:00:00Z")}
    _assert_same(_cached(fine), _uncached(fine))


def test_a_number_too_large_to_move_makes_no_template():
    """1e500 plus 1 rounds to 1e500: checked with moved literals, its parameter would look
    constant and be served to the next number of the shape."""
    template = ("Attributes/OData.CSC.DoubleAttribute/any(a:a/Name eq 'orbitAccuracy' and "
                "a/Value gt {})")
    for literal in ("1e500", "0.25", "1e500", "7"):
        params = {"$filter": template.format(literal)}
        _assert_same(_cached(params), _uncached(params))


def test_folded_or_listed_literals_are_not_slots():
    for text in ("PublicationDate in (2019-01-01T00:00:00Z, 2019-01-02T00:00:00Z)",
                 "2019-01-01T00:00:00Z lt 2019-01-02T00:00:00Z and ContentLength gt 1"):
        options = parse_query_options({"$filter": text})
        assert options.filter_slots is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(filters, validity_filters).flatmap(relettered))
def test_the_scan_finds_the_literals_the_lexer_finds(text):
    scanned = scan(text, odata_parser._scanner())
    try:
        raw = odata_parser._parse_raw(text)
    except ODataError:
        return
    lexed = sorted((n.start, n.token) for n in _nodes(raw)
                   if isinstance(n, RawLiteral) and n.token in SLOT_TOKENS)
    assert lexed == list(zip(scanned.starts, scanned.key[1], strict=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(validity_filters.flatmap(lambda text: st.tuples(st.just(text), relettered(text))),
       OTHER_OPTIONS)
def test_a_known_shape_with_other_literals_selects_the_same_rows(conn, texts, other):
    for text in texts:
        params = {"$filter": text, **other}
        want = _uncached(params)
        if isinstance(want[0], str):
            continue
        expected, rendered = want
        rows = conn.execute(rendered.select, rendered.params).fetchall()
        page = fetch_products(conn, parse_query_options(params))
        assert [r["id"] for r in page.rows] == [r[0] for r in rows][:expected.top]
        if rendered.count is not None:
            (count,) = conn.execute(rendered.count, rendered.count_params).fetchone()
            assert page.count == count
