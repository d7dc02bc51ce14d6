"""Query options and `$filter` mistakes: each one is an ODataError with a useful message."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from shared.odata import ast, parse_filter, parse_query_options
from shared.odata.errors import ODataError
from shared.odata.options import MAX_TOP, OrderKey
from shared.odata.parser import MAX_DEPTH


def error(params) -> ODataError:
    with pytest.raises(ODataError) as caught:
        parse_query_options(params)
    assert caught.value.status == 400
    return caught.value


def filter_error(text: str) -> str:
    with pytest.raises(ODataError) as caught:
        parse_filter(text)
    assert caught.value.code == "InvalidFilter"
    return caught.value.message


# --- options --------------------------------------------------------------------------------


def test_defaults():
    options = parse_query_options({})
    assert (options.filter, options.orderby, options.top, options.skip, options.count) == (
        None, (), MAX_TOP, 0, False)
    assert not options.expand_attributes and not options.expand_assets
    assert options.select is None and options.format == "json"


def test_top_and_skip():
    assert parse_query_options({"$top": "1000", "$skip": "0"}).top == 1000
    assert parse_query_options({"$top": "0"}).top == 0
    assert parse_query_options({"$skip": "25"}).skip == 25
    for bad in ("1001", "-1", "1.5", "abc", "", " ", "1e3", "٣", "99999999999999999999999"):
        assert error({"$top": bad}).code == "InvalidTop"
    for bad in ("-1", "x", "1.0", "", "99999999999999999999999"):
        assert error({"$skip": bad}).code == "InvalidSkip"


def test_count_any_casing():
    for text, value in (("true", True), ("TRUE", True), ("True", True), ("false", False),
                        ("FaLsE", False)):
        assert parse_query_options({"$count": text}).count is value
    assert error({"$count": "yes"}).code == "InvalidCount"
    assert error({"$count": "1"}).code == "InvalidCount"


def test_expand_lists_and_repeats():
    both = parse_query_options([("$expand", "Attributes"), ("$expand", "Assets")])
    assert both.expand_attributes and both.expand_assets
    assert parse_query_options({"$expand": "Attributes, Assets"}).expand_assets
    assert parse_query_options({"$expand": ["Assets"]}).expand_attributes is False
    assert error({"$expand": "Checksum"}).code == "InvalidExpand"
    assert error({"$expand": "Attributes,Foo"}).code == "InvalidExpand"


def test_format_json_only():
    assert parse_query_options({"$format": "json"}).format == "json"
    assert parse_query_options({"$format": "application/json;odata.metadata=minimal"}).format == "json"
    assert error({"$format": "xml"}).code == "InvalidFormat"


def test_select():
    assert parse_query_options({"$select": "Name,Id"}).select == ("Name", "Id")
    assert parse_query_options({"$select": "*"}).select is None
    assert error({"$select": "Name,Secret"}).code == "InvalidSelect"


def test_unknown_and_repeated_options():
    assert error({"$search": "x"}).code == "InvalidQueryOption"
    assert error({"$apply": "x"}).code == "InvalidQueryOption"
    assert error([("$top", "1"), ("$top", "2")]).code == "InvalidQueryOption"
    # Not ours: ignored.
    assert parse_query_options({"token": "abc", "filter": "junk"}).filter is None
    # OData 4.01: system query option names are case-insensitive.
    assert parse_query_options({"$TOP": "3"}).top == 3


def test_multidict_like_mapping():
    class MultiDict(dict):
        def lists(self):
            return [("$expand", ["Attributes", "Assets"]), ("$top", ["5"])]

    options = parse_query_options(MultiDict())
    assert options.expand_attributes and options.expand_assets and options.top == 5


def test_orderby():
    assert parse_query_options({"$orderby": "ContentDate/Start asc"}).orderby == (
        OrderKey("ContentDate/Start"),)
    assert parse_query_options({"$orderby": "PublicationDate DESC, Name"}).orderby == (
        OrderKey("PublicationDate", True), OrderKey("Name"))
    for bad in ("Attributes", "Foo asc", "Name up", "Name asc,", ",Name", "Name;DROP",
                "Name asc desc", "ContentDate", "name"):
        assert error({"$orderby": bad}).code == "InvalidOrderBy", bad


def test_error_body():
    caught = error({"$top": "5000"})
    assert caught.body() == {"error": {"code": "InvalidTop",
                                       "message": "$top must be at most 1000, got 5000"}}


# --- $filter literals and types ---------------------------------------------------------------


def literal_of(text: str) -> object:
    node = parse_filter(text)
    assert isinstance(node, ast.Compare)
    return node.literal.value


@pytest.mark.parametrize("text", [
    "2021-02-25T22:59:42.000Z", "2021-02-25T22:59:42Z", "'2021-02-25T22:59:42.000Z'",
    "2021-02-25T23:59:42+01:00", "2021-02-25T21:59:42.000-01:00", "2021-02-25T22:59:42",
    "2021-02-25t22:59:42z", "2021-02-25T22:59:42.0000000Z", "datetimeoffset'2021-02-25T22:59:42Z'",
    "2021-02-25T23:59:42 01:00",  # '+' that a URL decoder turned into a space
])
def test_datetime_literal_forms(text):
    assert literal_of(f"PublicationDate lt {text}") == datetime(2021, 2, 25, 22, 59, 42, tzinfo=UTC)


def test_datetime_fraction_kept_to_the_microsecond():
    assert literal_of("OriginDate gt 2021-02-25T22:59:42.1234567Z") == datetime(
        2021, 2, 25, 22, 59, 42, 123456, tzinfo=UTC)


def test_guid_literal_forms():
    value = UUID("8f1c2a3b-0000-4000-8000-00000000abcd")
    assert literal_of("Id eq 8f1c2a3b-0000-4000-8000-00000000abcd") == value
    assert literal_of("Id eq '8F1C2A3B-0000-4000-8000-00000000ABCD'") == value
    assert literal_of("Id eq guid'8f1c2a3b-0000-4000-8000-00000000abcd'") == value


def test_string_escapes_and_keyword_case():
    assert literal_of("Name eq 'O''Brien'") == "O'Brien"
    node = parse_filter("Name EQ 'a' AND NOT (Online) Or ContentLength Gt 5")
    assert isinstance(node, ast.Or)


def test_literal_on_the_left_is_flipped():
    node = parse_filter("5 lt ContentLength")
    assert node == ast.Compare("gt", ast.Property("ContentLength", ast.Kind.INT64),
                               ast.Literal(5, ast.Kind.INT64))


@pytest.mark.parametrize(("text", "fragment"), [
    ("ContentLength eq 'abc'", "ContentLength needs an integer"),
    ("Name gt 5", "Name needs a String"),
    ("Foo eq 1", "unknown property 'Foo'"),
    ("ContentDate/Middle lt 2021-01-01T00:00:00Z", "unknown property"),
    ("name eq 'x'", "unknown property 'name'"),
    ("length(Name) eq 3", "unknown function 'length'"),
    ("PublicationDate gt 2021-13-01T00:00:00Z", "not a valid DateTimeOffset"),
    ("PublicationDate gt '2021-02-30T00:00:00Z'", "not a valid DateTimeOffset"),
    ("PublicationDate gt '2021-02-01'", "not a valid DateTimeOffset"),
    ("PublicationDate gt 2021-02-01T00:00:00+25:00", "not a valid DateTimeOffset"),
    ("OriginDate gt 0001-01-01T00:00:00+01:00", "not a valid DateTimeOffset"),
    ("Id eq 'not-a-guid'", "not a valid Guid"),
    ("Name eq 'x' garbage", "syntax error"),
    ("Name eq 'x", "syntax error"),
    ("Name eq", "unexpected end"),
    ("(Name eq 'x'", "unexpected end"),
    ("Online eq 'true'", "needs a Boolean"),
    ("ContentLength eq 99999999999999999999", "out of range"),
    ("ContentLength gt 1.5", "needs an integer"),
    ("PublicationDate gt null", "null can only be compared"),
    ("Name", "not a boolean expression"),
    ("'abc'", "not a boolean expression"),
    ("contains(Name)", "takes 2 arguments"),
    ("contains(ContentLength,'1')", "needs a string"),
    ("contains(Name,Name)", "must be a string literal"),
    ("Name eq ContentType", "one side must be a literal"),
    ("Name in (ContentType)", "literals only"),
    ("Name in ('a', null)", "null is not allowed"),
    ("Attributes eq 'x'", "only be filtered with a lambda"),
    ("Attributes/any(a:a/Name eq 'x')", "only supported over typed Attributes"),
    ("Attributes/OData.CSC.FooAttribute/any(a:a/Name eq 'x')", "only supported over typed"),
    ("Attributes/OData.CSC.StringAttribute/any(a:b/Name eq 'x')", "unknown property 'b/Name'"),
    ("Attributes/OData.CSC.StringAttribute/any(a:a/Foo eq 'x')", "unknown attribute member"),
    ("Attributes/OData.CSC.StringAttribute/any(a:a/OData.CSC.IntegerAttribute/Value eq 1)",
     "inside a lambda over OData.CSC.StringAttribute"),
    ("Attributes/OData.CSC.IntegerAttribute/any(a:a/Value eq 'x')", "needs a number"),
    ("Attributes/OData.CSC.StringAttribute/any(a:Attributes/OData.CSC.StringAttribute/any(b:b/Name eq 'x'))",
     "nested lambda"),
    ("Attributes/OData.CSC.StringAttribute/all()", "all() needs a lambda"),
    ("contains(Name,'a') eq 'x'", "compared with eq/ne true or false"),
    ("contains(Name,'a') gt true", "compared with eq/ne true or false"),
    ("Name eq 'a\x00b'", "NUL"),
    ("ContentLength eq " + "9" * 80, "longer than"),
    ("Attributes/OData.CSC.DoubleAttribute/any(a:a/Value gt 1e5000)", "out of range"),
    ("Name eq 'x'; DROP TABLE products", "syntax error"),
    ("Name eq 'x' -- comment", "syntax error"),
])
def test_filter_mistakes(text, fragment):
    assert fragment in filter_error(text)


def test_nesting_limit():
    assert filter_error("not " * (MAX_DEPTH + 5) + "Online").endswith(f"deeper than {MAX_DEPTH} levels")
    parse_filter("not " * (MAX_DEPTH - 5) + "Online")
    deep = "(" * (MAX_DEPTH + 5) + "Name eq 'x'" + " and Online)" * (MAX_DEPTH + 5)
    assert "deeper than" in filter_error(deep)
    # Redundant parentheses create no node: harmless however many.
    parse_filter("(" * 5000 + "Online" + ")" * 5000)


def test_filter_length_limit():
    assert "longer than" in filter_error("Name eq '" + "x" * 40_000 + "'")


def test_a_repeated_filter_is_parsed_once_and_a_refused_one_every_time():
    text = "startswith(Name,'S1A') and ContentLength gt 5"
    first = parse_filter(text)
    assert parse_filter(text) is first  # kept: the AST is immutable
    assert first == parse_filter(" " + text)  # another text, parsed anew: the same AST
    long = "Name eq '" + "x" * 3000 + "'"
    assert parse_filter(long) is not parse_filter(long)  # long texts are not kept
    for _ in range(2):
        assert "unexpected" in filter_error("Name eq eq 'x'")


def test_empty_filter_option_means_no_filter():
    assert parse_query_options({"$filter": ""}).filter is None
    with pytest.raises(ODataError):
        parse_filter("   ")


def test_constant_folding_of_collection():
    assert parse_filter("Collection/Name eq 'SENTINEL-1'") == ast.Const(True)
    assert parse_filter("Collection/Name eq 'SENTINEL-2' and Online") == ast.Const(False)
    assert parse_filter("Collection/Name in ('SENTINEL-2', 'SENTINEL-1')") == ast.Const(True)
