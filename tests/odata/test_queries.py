"""Products queries against real PostgreSQL, with results worked out by hand from the table
in seed.py (P-numbers are the products' numbers there). Each filter is also evaluated in
Python (`evaluate.matches`) on the same rows: both must agree."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.odata import (
    build_products_query,
    fetch_products,
    matches,
    parse_filter,
    parse_query_options,
    products_query,
)
from shared.odata.errors import ODataError
from tests.odata.seed import NUMBER_OF, PRODUCTS

ALL = set(range(1, 32))
NAME = {int(str(p["id"])[-12:]): p["name"] for p in PRODUCTS}


def run(conn: psycopg.Connection, **params: str):
    return fetch_products(conn, parse_query_options({f"${k}": v for k, v in params.items()}))


def numbers(page) -> list[int]:
    return [NUMBER_OF[row["id"]] for row in page.rows]


def evaluated(rows: list[dict], text: str) -> set[int]:
    node = parse_filter(text)
    return {NUMBER_OF[r["id"]] for r in rows if r["status"] == "published" and matches(node, r)}


# --- the three requests seen in the field (ODATA.md) ----------------------------------------


def test_field_orbit_valid_over_an_hour(conn, rows):
    text = ("startswith(Name,'S1A') and contains(Name,'AUX_POEORB') and "
            "ContentDate/Start lt 2021-02-26T00:00:00.000Z and "
            "ContentDate/End gt 2021-02-26T01:00:00.000Z")
    page = run(conn, filter=text, orderby="ContentDate/Start asc", top="1")
    assert [r["name"] for r in page.rows] == [
        "S1A_OPER_AUX_POEORB_OPOD_20210318T025302_V20210225T225942_20210227T005942.EOF"]
    assert page.has_more is False
    assert evaluated(rows, text) == {14}


def test_field_publication_window(conn, rows):
    text = "PublicationDate ge 2024-01-01T00:00:00Z and PublicationDate lt 2024-01-01T00:40:00Z"
    page = run(conn, filter=text, orderby="PublicationDate asc", top="500", skip="0")
    assert [r["name"] for r in page.rows] == [
        "S1A_OPER_AUX_RESORB_OPOD_20240101T000000_V20231231T211500_20240101T005000.EOF",
        "S1__AUX_TRO_V20240101T000000_20240101T055959_G20240101T001000.SAFE.zip",
        "S1A_OPER_AUX_PREORB_OPOD_20240101T003000_V20240101T000000_20240101T060000.EOF",
    ]
    assert evaluated(rows, text) == {27, 29, 31}


def test_field_units_and_product_type_attribute(conn, rows):
    text = ("(startswith(Name,'S1B') or startswith(Name,'S1_')) and "
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')")
    page = run(conn, filter=text, expand="Attributes", count="true")
    assert sorted(r["name"] for r in page.rows) == [
        "S1B_AUX_CAL_V20160422T000000_G20160421T130000.SAFE.zip",
        "S1B_AUX_CAL_V20190514T090000_G20190513T102030.SAFE.zip",
    ]
    assert page.count == 2
    assert all(r["attributes"]["productType"] == "AUX_CAL" for r in page.rows)
    assert evaluated(rows, text) == {5, 6}


# --- filters and their expected product numbers ---------------------------------------------

CASES: list[tuple[str, set[int]]] = [
    ("Name eq 'S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.zip'", {1}),
    # '_' and '%' are literal in contains/startswith/endswith.
    ("contains(Name,'S1_')", {8, 9, 10, 11, 12, 31}),
    ("contains(Name,'%')", set()),
    ("contains(Name,'\\')", set()),
    ("endswith(Name,'.EOF')",
     {13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 29, 30}),
    ("startswith(Name,'S1C')", {7, 30}),
    ("ContentLength gt 4000000", {13, 14, 15, 16, 26}),
    ("ContentLength le 15500", {24, 25}),
    ("Online eq false", {4, 17, 18}),
    ("not Online", {4, 17, 18}),
    ("Online", ALL - {4, 17, 18}),
    ("Id eq 00000000-0000-4000-8000-000000000005", {5}),
    ("Id eq '00000000-0000-4000-8000-000000000007'", {7}),
    ("Id in (00000000-0000-4000-8000-000000000001, 00000000-0000-4000-8000-000000000002,"
     " 00000000-0000-4000-8000-000000000101)", {1, 2}),
    ("ContentDate/End eq 9999-12-31T23:59:59.999Z", {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 21, 22, 26}),
    ("EvictionDate lt 9999-12-31T00:00:00Z", {17, 18, 19, 27}),
    ("PublicationDate lt '2016-01-01T01:00:00.000Z'", {21}),
    ("PublicationDate le 2016-01-01T01:00:00Z", {11, 21}),
    ("PublicationDate ge 2024-01-01T01:00:00+01:00", {7, 27, 29, 30, 31}),
    ("OriginDate gt 2024-01-01T00:35:00Z", {7, 30}),
    ("ContentDate/Start ge 2024-01-01T00:00:00", {7, 29, 31}),
    ("contains(Name,'AUX_RESORB') and ContentDate/Start le 2021-02-25T22:43:18Z"
     " and ContentDate/End ge 2021-02-26T02:00:48Z", {17}),
    ("contains(Name,'AUX_RESORB') and ContentDate/Start lt 2021-02-25T22:43:18Z", {18}),
    ("contains(Name,'AUX_PREORB') and ContentDate/End lt 2024-01-01T06:00:00Z", {19, 28}),
    ("contains(Name,'AUX_PREORB') and ContentDate/End le 2024-01-01T06:00:00Z", {19, 28, 29}),
    ("contains(Name,'AUX_PREORB') and ContentDate/Start gt 2023-12-31T23:20:00Z", {29}),
    ("contains(Name,'AUX_PREORB') and ContentDate/Start ge 2023-12-31T23:20:00Z", {28, 29}),
    ("contains(Name,'MPL_ORBSCT') and ContentDate/Start eq 2014-05-07T15:07:04Z", {21}),
    ("contains(Name,'AUX_RESORB') and ContentDate/End eq 2017-12-13T13:45:07Z", {18}),
    ("Attributes/OData.CSC.IntegerAttribute/any(a:a/Name eq 'instrumentConfigurationId'"
     " and a/OData.CSC.IntegerAttribute/Value ge 2)", {3, 4, 5}),
    ("Attributes/OData.CSC.IntegerAttribute/any(x:x/Name eq 'absoluteOrbitNumber'"
     " and x/Value in (36515, 25330))", {14, 16}),
    ("Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'orbitAccuracy'"
     " and att/OData.CSC.DoubleAttribute/Value le 0.05)", {13, 14}),
    ("Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'orbitAccuracy'"
     " and att/OData.CSC.DoubleAttribute/Value lt 0.05)", {14}),
    ("Attributes/OData.CSC.BooleanAttribute/any(att:att/Name eq 'qualityValidated'"
     " and att/OData.CSC.BooleanAttribute/Value eq true)", {13, 14}),
    ("Attributes/OData.CSC.BooleanAttribute/any(att:att/Name eq 'qualityValidated'"
     " and not att/OData.CSC.BooleanAttribute/Value)", {15, 17}),
    ("Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'beginningDateTime'"
     " and att/OData.CSC.DateTimeOffsetAttribute/Value le 2016-01-01T00:00:00Z)", {11, 21, 26}),
    ("Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'endingDateTime'"
     " and att/OData.CSC.DateTimeOffsetAttribute/Value eq 9999-12-31T23:59:59.999Z)",
     {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 21, 22, 26}),
    ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'processingCenter'"
     " and att/Value eq null)", {18}),
    ("not Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'processingCenter')",
     {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22, 26, 31}),
    ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'platformSerialIdentifier'"
     " and att/Value eq '')", {8, 9, 10, 11, 12, 31}),
    ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType'"
     " and att/Value in ('AUX_TEC', 'AUX_TRO'))", {9, 10, 31}),
    ("Attributes/OData.CSC.StringAttribute/any(att:startswith(att/Value, 'AUX_P'))",
     {3, 4, 13, 14, 15, 16, 19, 28, 29}),
    # all() is vacuously true for products without Integer attributes.
    ("Attributes/OData.CSC.IntegerAttribute/all(a:a/Value gt 20000)",
     {8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 31}),
    ("not Attributes/OData.CSC.DoubleAttribute/any()", ALL - {13, 14, 15, 16}),
    ("Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'fileVersion' and a/Value gt '0001')",
     {14, 21, 22}),
    ("Collection/Name eq 'SENTINEL-1' and startswith(Name,'S1B')", {5, 6, 16, 22, 23, 28}),
    ("Collection/Name eq 'SENTINEL-2'", set()),
    ("tolower(Name) eq 's1a_aux_cal_v20171017t080000_g20171013t101200.safe.zip'", {1}),
    ("toupper(Name) eq 'S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.ZIP'", {1}),
    ("ContentType eq 'application/octet-stream'",
     {13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 29, 30}),
    ("Name in ('S1__AUX_ICE_V20160501T120000_G20160502T043607.SAFE.zip', 'nope',"
     " 'S1B_AUX_CAL_V20200101T000000_G20191231T000000.SAFE.zip')", {8}),
    ("ContentDate/Start lt 2016-01-01T00:00:00Z or ContentLength eq 45679", {4, 11, 21, 26}),
    ("not (startswith(Name,'S1A') or startswith(Name,'S1B'))", {7, 8, 9, 10, 11, 12, 30, 31}),
    ("startswith(Name,'S1A') and not contains(Name,'OPER')", {1, 2, 3, 4, 26}),
    ("contains(Name,'AUX_CAL') eq true and startswith(Name,'S1A') eq false", {5, 6, 7}),
    ("ModificationDate gt 2024-06-01T00:00:00Z", {7}),
    ("Name eq 'S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.zip'"
     " or Name eq 'x'' OR 1=1 --'", {1}),
    ("contains(Name,'O''Brien')", set()),
    # Code-point order: '_' (0x5F) sorts after 'A'..'D'.
    ("Name gt 'S1__'", {8, 9, 10, 11, 12, 31}),
    ("Name lt 'S1B'", {1, 2, 3, 4, 13, 14, 15, 17, 18, 19, 20, 21, 24, 25, 26, 27, 29}),
    ("STARTSWITH(Name,'S1C') AND ContentLength GT 500000", {30}),
    ("PublicationDate ge datetimeoffset'2024-12-01T00:00:00Z'", {7}),
    ("EvictionDate eq 9999-12-31T23:59:59.999Z and ContentLength lt 50000", {3, 4, 24, 25}),
    ("true", ALL),
    ("false", set()),
    ("PublicationDate eq null", set()),
    ("PublicationDate ne null", ALL),
    ("ContentLength in (45678, 45679, 15000) and not (ContentLength eq 45679)", {3, 24}),
    ("startswith(Name,'S1A') and contains(Name,'AUX_RESORB') and "
     "ContentDate/Start lt 2024-01-01T00:30:00Z and ContentDate/End gt 2024-01-01T00:30:00Z",
     {27}),
    ("startswith(Name,'S1_') and contains(Name,'AUX_TRO') and "
     "ContentDate/Start le 2019-08-05T18:00:00Z and ContentDate/End ge 2019-08-05T23:59:59Z",
     {10}),
    ("not (contains(Name,'AUX_POEORB') and ContentDate/Start lt 2021-02-26T00:00:00Z)",
     ALL - {13, 14, 16}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:70] for c in CASES])
def test_filter(conn, rows, text, expected):
    page = run(conn, filter=text)
    assert set(numbers(page)) == expected
    assert len(page.rows) == len(expected)
    assert evaluated(rows, text) == expected


def test_count_of_cases():
    assert len(CASES) >= 40


# --- ordering, paging, count -----------------------------------------------------------------


def test_orderby_content_length_desc(conn):
    assert numbers(run(conn, orderby="ContentLength desc", top="3")) == [26, 16, 15]


def test_orderby_name_with_skip(conn):
    assert numbers(run(conn, orderby="Name asc", top="2", skip="1")) == [2, 3]


def test_orderby_several_keys(conn):
    assert numbers(run(conn, orderby="Online asc,ContentLength asc", top="2")) == [4, 18]
    assert numbers(run(conn, orderby="Online ASC, ContentDate/End DESC", top="3")) == [4, 17, 18]


def test_paging_is_stable_with_ties(conn):
    seen: list[int] = []
    skip = 0
    while True:
        page = run(conn, orderby="ContentType asc,Online desc", top="7", skip=str(skip))
        seen.extend(numbers(page))
        if not page.has_more:
            break
        skip += 7
    assert sorted(seen) == sorted(ALL)


def test_count_and_next_page(conn):
    page = run(conn, filter="startswith(Name,'S1_')", top="2", count="True")
    assert page.count == 6 and len(page.rows) == 2 and page.has_more
    last = run(conn, filter="startswith(Name,'S1_')", top="2", skip="4", count="false")
    assert last.count is None and len(last.rows) == 2 and not last.has_more


def test_top_zero_and_skip_past_end(conn):
    page = run(conn, top="0", count="true")
    assert page.rows == [] and page.has_more and page.count == 31
    assert run(conn, skip="1000").rows == []


def test_default_order_is_publication(conn):
    page = run(conn, top="3")
    assert numbers(page) == [21, 11, 6]


def test_attributes_only_when_expanded(conn):
    assert "attributes" not in run(conn, top="1").rows[0]
    assert "attributes" in run(conn, top="1", expand="Assets,Attributes").rows[0]


def test_unknown_orderby_is_refused(conn):
    with pytest.raises(ODataError):
        run(conn, orderby="Attributes asc")


# --- statements kept for repeated requests ---------------------------------------------------


@pytest.mark.parametrize("text", [c[0] for c in CASES], ids=[c[0][:70] for c in CASES])
def test_kept_statements_are_what_psycopg_sends_for_the_session(conn, text):
    options = parse_query_options({"$filter": text, "$count": "true",
                                   "$orderby": "Name desc", "$expand": "Attributes"})
    kept = products_query._statements(options)
    # Asked again: not compiled again (the kept text; a filter with slots gets its
    # parameters anew from its shape's statements, see shapes.py).
    assert products_query._statements(options).select is kept.select
    query = build_products_query(options)
    assert kept.select == query.select.as_bytes(conn)
    assert kept.count == query.count.as_bytes(conn)
    assert unwrapped(kept.params) == unwrapped(query.params)


def unwrapped(params: tuple[object, ...]) -> list[object]:
    return [p.obj if isinstance(p, Jsonb) else p for p in params]  # Jsonb has no ==


def test_a_long_filter_is_compiled_each_time(conn):
    long = " or ".join(f"Name eq 'S1A_{i:05d}'" for i in range(150))
    options = parse_query_options({"$filter": long})
    assert products_query._statements(options) is not products_query._statements(options)
    assert run(conn, filter=long).rows == []
