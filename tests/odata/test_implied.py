"""Which index-friendly predicates a filter implies, and that their SQL matches the index."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources

from shared.odata import parse_filter
from shared.odata.implied import PRODUCT_TYPES, Implied, RangeCondition, exclusive_types, implied
from shared.odata.sql import compile_filter

T0 = datetime(2021, 2, 26, tzinfo=UTC)
T1 = datetime(2021, 2, 26, 1, tzinfo=UTC)


def facts(text: str) -> Implied:
    return implied(parse_filter(text))


def test_orbit_request():
    assert facts(
        "startswith(Name,'S1A') and contains(Name,'AUX_POEORB') and "
        "ContentDate/Start lt 2021-02-26T00:00:00.000Z and ContentDate/End gt 2021-02-26T01:00:00Z"
    ) == Implied(("A",), ("AUX_POEORB",), (RangeCondition("&&", None, T0, "()"),
                                           RangeCondition("&&", T1, None, "()")))


def test_units_and_types_from_name_patterns():
    assert facts("startswith(Name,'S1_')").platform_serials == ("",)
    assert facts("startswith(Name,'S1')") == Implied()
    assert facts("startswith(Name,'S1B_OPER_AUX_RESORB_')") == Implied(("B",), ("AUX_RESORB",))
    assert facts("contains(Name,'_AUX_PREORB_')").product_types == ("AUX_PREORB",)
    assert facts("Name eq 'S1C_AUX_CAL_V20241205T000000_G20241204T120000.SAFE.zip'") == Implied(
        ("C",), ("AUX_CAL",))
    assert facts("contains(Name,'AUX_RES')") == Implied()  # not a whole type
    assert facts("startswith(tolower(Name),'s1a')") == Implied()


def test_validity_needs_a_known_type():
    assert facts("ContentDate/Start lt 2021-02-26T00:00:00Z") == Implied()
    assert facts("startswith(Name,'S1A') and ContentDate/End gt 2021-02-26T00:00:00Z") == Implied(("A",))


def test_nothing_under_or_or_not():
    assert facts("startswith(Name,'S1A') or contains(Name,'AUX_CAL')") == Implied()
    assert facts("not (startswith(Name,'S1A') and contains(Name,'AUX_CAL'))") == Implied()
    assert facts("not startswith(Name,'S1A') and contains(Name,'AUX_CAL')") == Implied(
        (), ("AUX_CAL",))


def test_every_comparison_of_the_validity():
    text = ("contains(Name,'AUX_TRO') and ContentDate/Start {} 2021-02-26T00:00:00Z")
    assert facts(text.format("le")).ranges == (RangeCondition("&&", None, T0, "(]"),)
    assert facts(text.format("ge")).ranges == (RangeCondition("&>", T0, None, "[)"),)
    assert facts(text.format("gt")).ranges == (RangeCondition("&>", T0, None, "()"),)
    assert facts(text.format("eq")).ranges == (RangeCondition("&&", T0, T0, "[]"),)
    assert facts(text.format("ne")).ranges == ()
    end = text.replace("Start", "End")
    assert facts(end.format("lt")).ranges == (RangeCondition("&<", None, T0, "()"),)
    assert facts(end.format("le")).ranges == (RangeCondition("&<", None, T0, "(]"),)
    assert facts(end.format("ge")).ranges == (RangeCondition("&&", T0, None, "[)"),)


def test_types_contained_in_other_served_types_are_not_used():
    assert exclusive_types(PRODUCT_TYPES) == PRODUCT_TYPES
    assert "AUX_CAL" not in exclusive_types(PRODUCT_TYPES | {"AUX_CAL___"})


def test_range_sql_is_the_index_expression():
    migration = (resources.files("shared.adapters.catalogue") / "migrations" / "0001_catalogue.sql").read_text()
    index = re.search(r"CREATE INDEX products_type_validity.*?;", migration, re.S).group(0)
    expression = re.search(r"tstzrange\([^)]*\)", index).group(0)
    where = compile_filter(parse_filter(
        "contains(Name,'AUX_RESORB') and ContentDate/Start lt 2021-02-26T00:00:00Z"))
    assert expression + " && " in where.sql.as_string(None)
    assert "WHERE status = 'published'" in index


def _attribute(name: str, value: str, cast: str = "StringAttribute") -> str:
    return (f"Attributes/OData.CSC.{cast}/any(att:att/Name eq '{name}' and "
            f"att/OData.CSC.{cast}/Value eq '{value}')")


def test_the_prip_attribute_query_implies_type_unit_and_validity():
    assert facts(_attribute("productType", "AUX_CAL")) == Implied((), ("AUX_CAL",))
    # Either order inside the lambda; a type no name pattern could imply (not exclusive).
    assert facts("Attributes/OData.CSC.StringAttribute/any(att:att/OData.CSC.StringAttribute"
                 "/Value eq 'AUX_WAV' and att/Name eq 'productType')").product_types == (
        "AUX_WAV",)
    assert facts(_attribute("productType", "AUX_POEORB") + " and "
                 + _attribute("platformSerialIdentifier", "B")
                 + " and ContentDate/Start lt 2021-02-26T00:00:00Z") == Implied(
        ("B",), ("AUX_POEORB",), (RangeCondition("&&", None, T0, "()"),))


def test_attribute_lambdas_that_say_less_imply_nothing():
    assert facts(_attribute("processingCenter", "AUX_CAL")) == Implied()
    assert facts(_attribute("platformSerialIdentifier", "AB")) == Implied()
    assert facts("not " + _attribute("productType", "AUX_CAL")) == Implied()
    assert facts(_attribute("productType", "AUX_CAL") + " or contains(Name,'AUX_INS')") == Implied()
    assert facts("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' or "
                 "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')") == Implied()
    assert facts("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
                 "att/OData.CSC.StringAttribute/Value ne 'AUX_CAL')") == Implied()
    assert facts("Attributes/OData.CSC.StringAttribute/all(att:att/Name eq 'productType' and "
                 "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')") == Implied()
