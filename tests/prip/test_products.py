"""Products queries over HTTP against the seeded catalogue (tests/prip/catalogue.py): the
three field requests of ODATA.md, filters, ordering, paging with @odata.nextLink, $count,
$expand, single products, the service and metadata documents, and refusals."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from shared.prip.products import KEPT
from tests.prip.catalogue import BY_NUMBER, NAME, NUMBER_OF_NAME, checksums_of, pid

pytestmark = pytest.mark.usefixtures("seeded")

PUBLICATION_ORDER = [20, 6, 10, 8, 1, 2, 3, 4, 19, 5, 11, 12, 9, 22, 18, 17, 21, 13, 14, 16,
                     15, 24, 23, 27, 25, 26, 7, 28, 29, 30, 31, 32]
SAFE = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 27}
OPEN_ENDED = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 20}


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["Name"] for p in response.json()["value"]]


def numbers(response) -> list[int]:
    return [NUMBER_OF_NAME[n] for n in names(response)]


# --- the three requests seen in the field ---------------------------------------------------


def test_field_orbit_valid_over_an_hour(api):
    answer = api.products(
        filter="startswith(Name,'S1A') and contains(Name,'AUX_POEORB') and "
               "ContentDate/Start lt 2021-02-26T00:00:00.000Z and "
               "ContentDate/End gt 2021-02-26T01:00:00.000Z",
        orderby="ContentDate/Start asc", top="1")
    assert names(answer) == [
        "S1A_OPER_AUX_POEORB_OPOD_20210318T025302_V20210225T225942_20210227T005942.EOF"]
    assert "@odata.nextLink" not in answer.json()


def test_field_publication_window(api):
    answer = api.products(
        filter="PublicationDate ge 2024-01-01T00:00:00Z and PublicationDate lt "
               "2024-01-01T00:40:00Z", orderby="PublicationDate asc", top="500", skip="0")
    assert names(answer) == [
        "S1A_OPER_AUX_RESORB_OPOD_20240101T000000_V20231231T211500_20240101T005000.EOF",
        "S1__AUX_TRO_V20240101T000000_20240101T055959_G20240101T001000.SAFE.zip",
        "S1A_OPER_AUX_PREORB_OPOD_20240101T003000_V20240101T000000_20240101T060000.EOF",
    ]


def test_field_units_and_product_type_attribute(api):
    answer = api.products(
        filter="(startswith(Name,'S1B') or startswith(Name,'S1_')) and "
               "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
               "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')", expand="Attributes")
    assert sorted(names(answer)) == [
        "S1B_AUX_CAL_V20160422T000000_G20160421T130000.SAFE.zip",
        "S1B_AUX_CAL_V20190514T090000_G20190513T102030.SAFE.zip",
    ]
    for product in answer.json()["value"]:
        types = {a["Name"]: a["Value"] for a in product["Attributes"]}
        assert types["productType"] == "AUX_CAL" and types["platformSerialIdentifier"] == "B"


# --- filters ---------------------------------------------------------------------------------

_CAL = ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')")

CASES: list[tuple[str, set[int]]] = [
    (f"Name eq '{NAME[1]}'", {1}),
    ("contains(Name,'S1_')", {8, 9, 10, 27}),
    ("endswith(Name,'.SAFE.zip')", SAFE),
    ("not contains(Name,'EOF')", SAFE),
    ("startswith(Name,'S1C')", {7, 26}),
    ("startswith(tolower(Name),'s1d')", {28, 29, 30, 31}),
    ("contains(Name,'AUX_POEORB')", {13, 14, 15, 16, 32}),
    ("contains(Name,'%')", set()),
    ("ContentLength gt 40000", {2, 11, 12, 13, 14, 15, 16, 32}),
    ("ContentLength le 1500", {18, 20, 22, 24, 25}),
    ("Online eq false", {4}),
    ("Online eq true and startswith(Name,'S1A_AUX_PP')", {3}),
    ("ContentDate/Start le 2014-12-31T00:00:00Z", {12, 20}),
    ("ContentDate/End eq 9999-12-31T23:59:59.999Z", OPEN_ENDED),
    ("EvictionDate lt 9999-12-31T00:00:00Z", {17, 18, 23}),
    ("PublicationDate gt '2025-01-01T00:00:00Z'", {28, 29, 30, 31, 32}),
    ("OriginDate ge 2024-01-01T00:30:00.000Z and OriginDate lt 2024-01-02T00:00:00Z", {25, 26}),
    (f"Id eq {pid(5)}", {5}),
    (f"Id in ({pid(5)}, {pid(101)})", {5}),
    (f"Name in ('{NAME[2]}', '{NAME[3]}', 'S1A_nothing.EOF')", {2, 3}),
    ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
     "att/OData.CSC.StringAttribute/Value eq 'AUX_RESORB')", {17, 23, 26, 28, 29, 30, 31}),
    ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'platformSerialIdentifier' and "
     "att/OData.CSC.StringAttribute/Value eq '')", {8, 9, 10, 27}),
    ("Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'instrumentConfigurationId' "
     "and att/OData.CSC.IntegerAttribute/Value eq 1)", {1, 2, 6, 7}),
    ("Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'absoluteOrbitNumber' and "
     "att/OData.CSC.IntegerAttribute/Value gt 36500)", {14, 15, 17, 18, 23, 25}),
    ("Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'orbitAccuracy' and "
     "att/OData.CSC.DoubleAttribute/Value lt 0.05)", {14}),
    ("Attributes/OData.CSC.BooleanAttribute/any(att:att/Name eq 'qualityValidated' and "
     "att/OData.CSC.BooleanAttribute/Value eq true)", {13, 14}),
    ("Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'beginningDateTime' "
     "and att/OData.CSC.DateTimeOffsetAttribute/Value le 2014-12-31T00:00:00Z)", {12, 20}),
    ("Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'beginningDateTime' "
     "and att/OData.CSC.DateTimeOffsetAttribute/Value ge 2025-01-01T00:00:00Z)",
     {28, 29, 30, 31, 32}),
    (f"{_CAL} and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq "
     "'platformSerialIdentifier' and att/OData.CSC.StringAttribute/Value eq 'A')", {1}),
    (f"not {_CAL} and endswith(Name,'.SAFE.zip')", SAFE - {1, 5, 6, 7}),
    ("Collection/Name eq 'SENTINEL-1' and startswith(Name,'S1C')", {7, 26}),
    ("(contains(Name,'PREORB') or contains(Name,'RESATT')) and "
     "ContentDate/Start gt 2021-01-01T00:00:00Z", {18, 21, 24, 25}),
    ("ContentDate/Start lt 2021-02-26T00:00:00Z and ContentDate/End gt 2021-02-26T00:00:00Z",
     {1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 20, 13, 14, 16, 17, 18, 21}),
    ("contains(Name,'AUX_POEORB') and ContentLength gt 1000000", {32}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_filter(api, text, expected):
    answer = api.products(filter=text)
    assert sorted(names(answer)) == sorted(NAME[n] for n in expected)


# --- ordering, paging, counting -------------------------------------------------------------


def test_default_order_is_publication_date(api):
    assert numbers(api.products(top="5")) == PUBLICATION_ORDER[:5]


def test_orderby_content_length_desc(api):
    assert numbers(api.products(orderby="ContentLength desc", top="3")) == [32, 2, 11]


def test_orderby_name_asc(api):
    answer = api.products(filter="startswith(Name,'S1B')", orderby="Name asc")
    assert numbers(answer) == [6, 5, 11, 16, 24, 21]


def test_orderby_several_keys(api):
    answer = api.products(filter="startswith(Name,'S1A_AUX')",
                          orderby="ContentDate/Start asc,Name desc")
    assert numbers(answer) == [12, 4, 3, 2, 1]


def test_count_and_next_links_walk_every_page(api, http):
    answer = api.products(filter="contains(Name,'RESORB')", count="true", top="2")
    pages = []
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["@odata.count"] == 7
        pages.append(numbers(answer))
        link = body.get("@odata.nextLink")
        if link is None:
            break
        assert link.startswith(f"{api.root}/Products?")
        answer = http.get(link, headers=api.headers("alice"))
    assert pages == [[17, 23], [26, 28], [29, 30], [31]]


def test_next_links_over_the_whole_catalogue(api, http):
    answer, seen, pages = api.products(top="10"), [], 0
    while True:
        seen += numbers(answer)
        pages += 1
        link = answer.json().get("@odata.nextLink")
        if link is None:
            break
        assert "token" not in link
        answer = http.get(link, headers=api.headers("alice"))
    assert seen == PUBLICATION_ORDER and pages == 4


def test_next_link_keeps_the_other_options(api):
    body = api.products(filter="startswith(Name,'S1A')", orderby="Name desc", top="2",
                        skip="4", expand="Attributes", count="TRUE").json()
    link = body["@odata.nextLink"]
    assert "$skip=6" in link and "$top=2" in link and "$orderby=Name%20desc" in link
    assert "$filter=startswith(Name,'S1A')" in link and "$expand=Attributes" in link
    assert "$count=TRUE" in link


def test_top_zero_counts_without_pages(api):
    body = api.products(top="0", count="true").json()
    assert body["value"] == [] and body["@odata.count"] == 32
    assert "@odata.nextLink" not in body


def test_skip_past_the_end(api):
    body = api.products(skip="40").json()
    assert body["value"] == [] and "@odata.nextLink" not in body


def test_count_endpoint(api):
    answer = api.get("Products/$count", params={"$filter": "contains(Name,'RESORB')"})
    assert answer.status_code == 200 and answer.text == "7"


# --- shapes ----------------------------------------------------------------------------------


def test_product_json_is_exactly_the_contract(api):
    product = BY_NUMBER[20]
    answer = api.products(filter=f"Id eq {pid(20)}")
    body = answer.json()
    assert answer.headers["Content-Type"].startswith("application/json")
    assert body["@odata.context"] == "$metadata#Products"
    assert body["value"] == [{
        "@odata.mediaContentType": "application/octet-stream",
        "Id": str(pid(20)),
        "Name": product.name,
        "ContentType": "application/octet-stream",
        "ContentLength": 650,
        "OriginDate": "2014-05-08T00:00:00.000Z",
        "PublicationDate": "2014-05-08T01:00:00.000Z",
        "ModificationDate": "2014-05-08T01:00:00.000Z",
        "Online": True,
        "EvictionDate": "9999-12-31T23:59:59.999Z",
        "Checksum": checksums_of(product),
        "ContentDate": {"Start": "2014-05-07T15:07:04.000Z", "End": "9999-12-31T23:59:59.999Z"},
    }]
    assert [c["Algorithm"] for c in body["value"][0]["Checksum"]] == ["MD5", "XXH3-128"]


def test_dates_keep_milliseconds(api):
    product = api.get(f"Products({pid(25)})").json()
    assert product["PublicationDate"] == "2024-01-01T00:39:59.999Z"
    assert product["EvictionDate"] == KEPT
    evicting = api.get(f"Products({pid(23)})").json()
    assert evicting["EvictionDate"] == "2024-03-31T00:00:00.000Z"


def test_attributes_appear_only_when_expanded(api):
    plain = api.products(filter=f"Id eq {pid(13)}").json()["value"][0]
    assert "Attributes" not in plain and "Assets" not in plain
    expanded = api.products(filter=f"Id eq {pid(13)}", expand="Attributes").json()["value"][0]
    assert expanded["Attributes"] == [
        {"@odata.type": "#OData.CSC.IntegerAttribute", "Name": "absoluteOrbitNumber",
         "ValueType": "Integer", "Value": 36500},
        {"@odata.type": "#OData.CSC.DateTimeOffsetAttribute", "Name": "beginningDateTime",
         "ValueType": "DateTimeOffset", "Value": "2021-02-24T22:59:42.000Z"},
        {"@odata.type": "#OData.CSC.DateTimeOffsetAttribute", "Name": "endingDateTime",
         "ValueType": "DateTimeOffset", "Value": "2021-02-26T00:59:42.000Z"},
        {"@odata.type": "#OData.CSC.StringAttribute", "Name": "fileClass",
         "ValueType": "String", "Value": "OPER"},
        {"@odata.type": "#OData.CSC.StringAttribute", "Name": "fileVersion",
         "ValueType": "String", "Value": "0001"},
        {"@odata.type": "#OData.CSC.DoubleAttribute", "Name": "orbitAccuracy",
         "ValueType": "Double", "Value": 0.05},
        {"@odata.type": "#OData.CSC.StringAttribute", "Name": "platformSerialIdentifier",
         "ValueType": "String", "Value": "A"},
        {"@odata.type": "#OData.CSC.StringAttribute", "Name": "platformShortName",
         "ValueType": "String", "Value": "SENTINEL-1"},
        {"@odata.type": "#OData.CSC.StringAttribute", "Name": "processingCenter",
         "ValueType": "String", "Value": "OPOD"},
        {"@odata.type": "#OData.CSC.StringAttribute", "Name": "productType",
         "ValueType": "String", "Value": "AUX_POEORB"},
        {"@odata.type": "#OData.CSC.BooleanAttribute", "Name": "qualityValidated",
         "ValueType": "Boolean", "Value": True},
    ]


def test_assets_expand_to_an_empty_array(api):
    both = api.get("Products", params=[("$filter", f"Id eq {pid(1)}"),
                                       ("$expand", "Attributes"), ("$expand", "Assets")])
    product = both.json()["value"][0]
    assert product["Assets"] == [] and len(product["Attributes"]) == 7
    alone = api.products(filter=f"Id eq {pid(1)}", expand="Assets").json()["value"][0]
    assert alone["Assets"] == [] and "Attributes" not in alone


def test_select_and_format(api):
    body = api.products(filter=f"Id eq {pid(3)}", select="Name,Id", format="json").json()
    assert body["value"] == [{"@odata.mediaContentType": "application/zip",
                              "Id": str(pid(3)), "Name": NAME[3]}]


@pytest.mark.parametrize("key", [str(pid(7)), f"'{pid(7)}'", f"Id={pid(7)}",
                                 f"Id='{pid(7)}'", str(pid(7)).upper()])
def test_one_product_by_id_in_every_form(api, key):
    answer = api.get(f"Products({key})")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["@odata.context"] == "$metadata#Products/$entity"
    assert body["Name"] == NAME[7] and "Attributes" not in body


def test_one_product_expanded_and_its_attributes(api):
    body = api.get(f"Products({pid(9)})", params={"$expand": "Attributes"}).json()
    attributes = api.get(f"Products({pid(9)})/Attributes").json()["value"]
    assert body["Attributes"] == attributes
    assert {a["Name"] for a in attributes} >= {"productType", "beginningDateTime"}


@pytest.mark.parametrize("number", [101, 102, 104, 999])
def test_unpublished_and_unknown_products_are_not_found(api, number):
    for path in (f"Products({pid(number)})", f"Products({pid(number)})/$value",
                 f"Products({pid(number)})/Attributes"):
        answer = api.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "NotFound"


def test_unpublished_products_never_appear(api):
    every = set(names(api.products(top="1000")))
    assert every == {NAME[n] for n in range(1, 33)}


def test_service_document(api):
    answer = api.get("")
    assert answer.status_code == 200
    assert [s["name"] for s in answer.json()["value"]] == ["Products", "Subscriptions"]


def test_metadata_document(api):
    answer = api.get("$metadata")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(answer.content)
    edm = "{http://docs.oasis-open.org/odata/ns/edm}"
    schema = root.find(f".//{edm}Schema")
    assert schema is not None and schema.get("Namespace") == "OData.CSC"
    types = {e.get("Name"): e for e in schema.findall(f"{edm}EntityType")}
    assert {"Product", "Subscription", "Attribute", "StringAttribute", "IntegerAttribute",
            "DoubleAttribute", "DateTimeOffsetAttribute", "BooleanAttribute"} <= set(types)
    assert types["Attribute"].get("Abstract") == "true"
    assert types["DoubleAttribute"].get("BaseType") == "OData.CSC.Attribute"
    product = {p.get("Name"): p.get("Type") for p in types["Product"].findall(f"{edm}Property")}
    assert product["ContentDate"] == "OData.CSC.TimeRange"
    assert product["Checksum"] == "Collection(OData.CSC.Checksum)"
    navigation = types["Product"].find(f"{edm}NavigationProperty")
    assert navigation is not None and navigation.get("Type") == "Collection(OData.CSC.Attribute)"
    sets = [s.get("Name") for s in schema.findall(f"{edm}EntityContainer/{edm}EntitySet")]
    assert sets == ["Products", "Subscriptions"]


# --- refusals ------------------------------------------------------------------------------

REFUSALS = [
    ({"$top": "1001"}, "InvalidTop"),
    ({"$top": "-1"}, "InvalidTop"),
    ({"$skip": "-1"}, "InvalidSkip"),
    ({"$filter": "Name eq"}, "InvalidFilter"),
    ({"$filter": "Colour eq 'red'"}, "InvalidFilter"),
    ({"$filter": "ContentLength eq 'ten'"}, "InvalidFilter"),
    ({"$filter": "PublicationDate gt 2021-02-30T00:00:00Z"}, "InvalidFilter"),
    ({"$orderby": "Colour asc"}, "InvalidOrderBy"),
    ({"$expand": "Everything"}, "InvalidExpand"),
    ({"$format": "xml"}, "InvalidFormat"),
    ({"$count": "maybe"}, "InvalidCount"),
    ({"$search": "orbit"}, "InvalidQueryOption"),
]


@pytest.mark.parametrize(("params", "code"), REFUSALS, ids=[r[1] + str(i)
                                                            for i, r in enumerate(REFUSALS)])
def test_client_mistakes_are_400_with_an_odata_error(api, params, code):
    answer = api.get("Products", params=params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]


def test_bad_keys_paths_and_methods(api):
    assert api.get("Products(not-a-guid)").json()["error"]["code"] == "InvalidKey"
    assert api.get("Products(not-a-guid)").status_code == 400
    assert api.get("Nothing").status_code == 404
    assert api.get(f"Products({pid(1)})/Nothing").status_code == 404
    refused = api.request("DELETE", f"Products({pid(1)})")
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
    assert refused.json()["error"]["code"] == "MethodNotAllowed"


def test_lenient_casing_of_names(api):
    assert api.get("products", params={"$TOP": "1"}).status_code == 200
    assert api.get("$METADATA").status_code == 200
