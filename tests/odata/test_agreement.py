"""Property-based: for random valid filters, `evaluate` (Python, for subscriptions) selects
exactly the seeded products PostgreSQL selects, and the implied index predicates never
change a result."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.odata import matches, parse_filter
from shared.odata import sql as odata_sql
from shared.odata.sql import compile_condition, compile_filter
from tests.odata.seed import PRODUCTS

NAMES = [p["name"] for p in PRODUCTS if p["name"]]
LENGTHS = sorted({int(p["content_length"]) for p in PRODUCTS})
INSTANTS = sorted({p[k] for p in PRODUCTS for k in ("content_start", "content_end",
                   "origin_date", "publication_date", "eviction_date") if p[k] is not None})
IDS = [str(p["id"]) for p in PRODUCTS]
STRING_ATTRS = ["productType", "platformSerialIdentifier", "processingCenter", "fileVersion",
                "fileClass", "platformShortName", "nope"]
STRING_VALUES = sorted({str(v) for p in PRODUCTS for k, v in p["attributes"].items()
                        if isinstance(v, str) and k in STRING_ATTRS} | {"", "x"})
COMPARE = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Substrings of real names hit; random text mostly misses: both matter.
fragments = st.one_of(
    st.sampled_from(NAMES).flatmap(
        lambda n: st.tuples(st.integers(0, len(n)), st.integers(0, 12)).map(
            lambda ab: n[ab[0]:ab[0] + ab[1]])),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=4),
    st.sampled_from(["S1_", "S1A", "_", "%", "\\", "'", "AUX_", "AUX_RESORB", "AUX_POEORB",
                     "AUX_CAL", "MPL_ORBSCT", "S1B_OPER", ".EOF", ".zip"]),
)
string_literal = fragments.map(quote)
string_subject = st.sampled_from(["Name", "tolower(Name)", "toupper(Name)", "ContentType"])


@st.composite
def instant(draw) -> str:
    base = draw(st.sampled_from(INSTANTS))
    if base.year == 9999:
        return "9999-12-31T23:59:59.999Z"
    value = base + timedelta(seconds=draw(st.sampled_from([0, 0, -1, 1, -3600, 86400])))
    form = draw(st.integers(0, 3))
    if form == 0:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if form == 1:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 2:
        return "'" + value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z'"
    shifted = value + timedelta(hours=2)
    return shifted.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"


date_property = st.sampled_from(["PublicationDate", "OriginDate", "ModificationDate",
                                 "EvictionDate", "ContentDate/Start", "ContentDate/End"])
length = st.one_of(st.sampled_from(LENGTHS), st.integers(0, 6_000_000))
number = st.one_of(st.integers(-5, 60000).map(str), st.sampled_from(
    ["0.05", "0.049", "0.051", "0.1", "36515", "1", "2", "3", "1e4", "2.5E-2"]))


def lambda_over(kind: str, value_literal, names) -> st.SearchStrategy[str]:
    cast = f"OData.CSC.{kind}Attribute"

    @st.composite
    def build(draw) -> str:
        var = draw(st.sampled_from(["att", "a", "x"]))
        value = draw(st.sampled_from([f"{var}/Value", f"{var}/{cast}/Value"]))
        conditions = []
        if draw(st.booleans()):
            conditions.append(f"{var}/Name eq {quote(draw(names))}")
        shape = draw(st.integers(0, 4))
        if shape == 0:
            conditions.append(f"{value} {draw(COMPARE)} {draw(value_literal)}")
        elif shape == 1:
            items = draw(st.lists(value_literal, min_size=1, max_size=3))
            conditions.append(f"{value} in ({', '.join(items)})")
        elif shape == 2:
            conditions.append(f"{value} eq null" if draw(st.booleans()) else f"{value} ne null")
        elif shape == 3:
            conditions.append(
                f"not ({value} {draw(COMPARE)} {draw(value_literal)}) or "
                f"{var}/Name {draw(COMPARE)} {quote(draw(names))}")
        body = " and ".join(conditions)
        op = draw(st.sampled_from(["any", "any", "all"]))
        if not body:
            return f"Attributes/{cast}/any()" if op == "any" else f"Attributes/{cast}/all({var}:{value} ne null)"
        return f"Attributes/{cast}/{op}({var}:{body})"

    return build()


lambdas = st.one_of(
    lambda_over("String", st.sampled_from(STRING_VALUES).map(quote), st.sampled_from(STRING_ATTRS)),
    lambda_over("Integer", number, st.sampled_from(
        ["instrumentConfigurationId", "absoluteOrbitNumber", "nope", "orbitAccuracy"])),
    lambda_over("Double", number, st.sampled_from(["orbitAccuracy", "absoluteOrbitNumber"])),
    lambda_over("DateTimeOffset", instant(), st.sampled_from(
        ["beginningDateTime", "endingDateTime", "generationDate", "productType"])),
    lambda_over("Boolean", st.sampled_from(["true", "false"]),
                st.sampled_from(["qualityValidated", "productType"])),
)


@st.composite
def atom(draw) -> str:
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return f"{draw(string_subject)} {draw(COMPARE)} {draw(string_literal)}"
    if kind == 1:
        function = draw(st.sampled_from(["contains", "startswith", "endswith"]))
        return f"{function}({draw(string_subject)},{draw(string_literal)})"
    if kind == 2:
        return f"ContentLength {draw(COMPARE)} {draw(length)}"
    if kind == 3:
        return f"{draw(date_property)} {draw(COMPARE)} {draw(instant())}"
    if kind == 4:
        return draw(st.sampled_from(["Online", "Online eq true", "Online ne false", "not Online"]))
    if kind == 5:
        ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=3))
        if len(ids) == 1:
            return f"Id eq {ids[0]}" if draw(st.booleans()) else f"Id eq '{ids[0]}'"
        return f"Id in ({', '.join(ids)})"
    if kind == 6:
        return f"{draw(date_property)} {draw(st.sampled_from(['eq', 'ne']))} null"
    if kind == 7:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))
        return f"Name in ({', '.join(quote(n) for n in names)})"
    if kind == 8:
        value = draw(st.sampled_from(["SENTINEL-1", "SENTINEL-2"]))
        return f"Collection/Name eq '{value}'"
    if kind == 9:
        return draw(st.sampled_from(["true", "false"]))
    if kind == 10:
        function = draw(st.sampled_from(["contains", "startswith"]))
        return f"{function}(Name,{draw(string_literal)}) eq {draw(st.sampled_from(['true', 'false']))}"
    return draw(lambdas)


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, min_size=2, max_size=4).map(lambda xs: "(" + " and ".join(xs) + ")"),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(" + " or ".join(xs) + ")"),
        children.map(lambda x: f"not ({x})"),
    )


filters = st.recursive(atom(), combine, max_leaves=8)
# Index-relevant shapes: name patterns, type and validity in one AND chain.
random_validity_filters = st.builds(
    lambda unit, product_type, start, end, rest: " and ".join(
        [f"startswith(Name,'S1{unit}')", f"contains(Name,'{product_type}')",
         f"ContentDate/Start {start[0]} {start[1]}", f"ContentDate/End {end[0]} {end[1]}", *rest]),
    st.sampled_from(["A", "B", "C", "_", "D", ""]),
    st.sampled_from(["AUX_RESORB", "AUX_POEORB", "AUX_PREORB", "AUX_CAL", "MPL_ORBSCT",
                     "AUX_TRO", "AUX_RESATT"]),
    st.tuples(COMPARE, instant()),
    st.tuples(COMPARE, instant()),
    st.lists(atom(), max_size=2),
)


@st.composite
def product_validity_filters(draw) -> str:
    """Around the validity of one real product, so that many of these match something."""
    product = draw(st.sampled_from([p for p in PRODUCTS if p["status"] == "published"]))
    unit = product["platform_serial"] or "_"
    start, end = product["content_start"], product["content_end"]
    shift = timedelta(seconds=draw(st.sampled_from([0, 1, -1, 3600, -3600])))

    def z(value):
        return "9999-12-31T23:59:59.999Z" if value.year == 9999 else value.strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")

    a = start + shift if draw(st.booleans()) else start
    parts = [f"startswith(Name,'S1{unit}')", f"contains(Name,'{product['product_type']}')",
             f"ContentDate/Start {draw(COMPARE)} {z(a)}"]
    if end.year < 9999:
        parts.append(f"ContentDate/End {draw(COMPARE)} {z(end + shift)}")
    else:
        parts.append(f"ContentDate/End {draw(COMPARE)} {z(end)}")
    parts.extend(draw(st.lists(atom(), max_size=1)))
    return " and ".join(draw(st.permutations(parts)))


validity_filters = st.one_of(random_validity_filters, product_validity_filters())


def sql_numbers(conn: psycopg.Connection, where) -> set[int]:
    query = odata_sql.fragment(
        "SELECT id FROM products WHERE status = 'published' AND {}", where)
    return {int(str(r[0])[-12:]) for r in conn.execute(query.sql, query.params, prepare=False)}


def python_numbers(rows: list[dict], text: str) -> set[int]:
    node = parse_filter(text)
    return {int(str(r["id"])[-12:]) for r in rows
            if r["status"] == "published" and matches(node, r)}


def check(conn, rows, text: str) -> None:
    node = parse_filter(text)
    expected = python_numbers(rows, text)
    assert sql_numbers(conn, compile_filter(node)) == expected, text
    assert sql_numbers(conn, compile_condition(node)) == expected, text
    # Every lambda also through the general jsonb_each path (no name shortcut).
    with mock.patch.object(odata_sql, "_named", lambda body: None):
        assert sql_numbers(conn, compile_condition(node)) == expected, text


SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(text=filters)
def test_evaluate_agrees_with_sql(conn, rows, text):
    check(conn, rows, text)


@SETTINGS
@given(text=validity_filters)
def test_implied_predicates_are_exact(conn, rows, text):
    check(conn, rows, text)


@pytest.mark.parametrize("text", [
    "not Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'processingCenter' and a/Value eq 'OPOD')",
    "not Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'processingCenter' and a/Value ne 'OPOD')",
    "not Attributes/OData.CSC.IntegerAttribute/any(a:a/Name eq 'absoluteOrbitNumber' and a/Value gt 30000)",
    "not Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'processingCenter' and a/Value eq null)",
    "Attributes/OData.CSC.StringAttribute/all(a:a/Value ne 'OPOD')",
    "Attributes/OData.CSC.DateTimeOffsetAttribute/any(a:a/Name eq 'productType')",
    "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'beginningDateTime')",
    "Attributes/OData.CSC.IntegerAttribute/any(a:a/Name eq 'orbitAccuracy')",
    "Attributes/OData.CSC.DoubleAttribute/any(a:a/Name eq 'orbitAccuracy' and a/Value eq 0.05)",
    "Attributes/OData.CSC.IntegerAttribute/any(a:tolower(a/Name) eq 'absoluteorbitnumber')",
    "not (contains(Name,'AUX_RESORB') and ContentDate/End gt 2021-02-26T00:00:00Z)",
])
def test_negated_and_mistyped_lambdas(conn, rows, text):
    check(conn, rows, text)
