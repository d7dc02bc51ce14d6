"""A page of Products is written straight to text (products.collection_text): the same
bytes as `json.dumps` of the dicts `products.collection` builds, which $select and the
single-product answers still use. Over HTTP on the seeded catalogue (every attribute type,
open ends, evictions, checksums), and on rows made to hold what a client never sees:
quotes, control characters, non-ASCII, missing values, non-canonical dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.s1time import format_canonical
from shared.odata import QueryOptions, fetch_products, parse_query_options
from shared.prip import products


def dumped(rows: list[dict], options: QueryOptions, *, count: int | None,
           next_link: str | None) -> str:
    """What the listing wrote before it wrote text: json.dumps of the dicts."""
    return json.dumps(products.collection(rows, options, count=count, next_link=next_link),
                      ensure_ascii=False)


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("params", [
    {"$expand": "Attributes,Assets", "$count": "true", "$top": "7", "$skip": "3"},
    {"$expand": "Attributes", "$orderby": "ContentLength desc"},
    {"$filter": "Online eq false or EvictionDate lt 9999-01-01T00:00:00Z"},
    {"$filter": "startswith(Name,'S1A')", "$select": "Name,ContentDate", "$count": "true"},
])
def test_a_listing_is_the_bytes_json_dumps_wrote(api, settings, params):
    answer = api.get("Products", params=params)
    assert answer.status_code == 200, answer.text
    options = parse_query_options(params)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        page = fetch_products(conn, options)
    link = answer.json().get("@odata.nextLink")
    assert page.rows and (link is not None) == page.has_more
    expected = dumped(page.rows, options, count=page.count, next_link=link)
    assert answer.content == expected.encode()


# --- rows no seed holds ---------------------------------------------------------------------

ZONES = st.sampled_from([UTC, ZoneInfo("Etc/UTC"), ZoneInfo("Europe/Paris")])
dates = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=ZONES)
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), texts,
                    st.floats(allow_nan=False, allow_infinity=False),
                    dates.map(format_canonical))
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(texts, scalars, max_size=2))
names = st.one_of(texts, st.sampled_from(["productType", "beginningDateTime",
                                          "instrumentConfigurationId", "generationDate"]))
rows = st.fixed_dictionaries({
    "id": st.uuids().map(UUID.__str__).map(UUID),
    "name": st.one_of(st.none(), texts),
    "content_type": texts,
    "content_length": st.integers(0, 2**63 - 1),
    "checksums": st.one_of(st.none(), st.lists(st.dictionaries(texts, texts, max_size=3),
                                               max_size=2)),
    "content_start": dates, "content_end": dates, "origin_date": dates,
    "publication_date": st.one_of(st.none(), dates), "modification_date": dates,
    "eviction_date": st.one_of(st.none(), dates),
    "online": st.booleans(),
    "attributes": st.one_of(st.dictionaries(names, values, max_size=6), st.none(),
                            st.lists(scalars, max_size=1)),
})


@given(st.lists(rows, max_size=3), st.booleans(), st.booleans(),
       st.one_of(st.none(), st.integers(0, 10**12)), st.one_of(st.none(), texts))
def test_any_rows_give_the_bytes_json_dumps_wrote(page, attributes, assets, count, skip):
    options = QueryOptions(expand_attributes=attributes, expand_assets=assets)
    link = None if skip is None else "https://x/odata/v1/Products?" + urlencode({"a": skip})
    assert (outcome(products.collection_text, page, options, count=count, next_link=link)
            == outcome(dumped, page, options, count=count, next_link=link))


def outcome(write, *args, **kwargs) -> tuple[str, str]:
    """The text written, or the error (a stored date/time that is no date: both refuse)."""
    try:
        return "text", write(*args, **kwargs)
    except ValueError as error:
        return "refused", str(error)


def test_a_product_never_changed_after_its_publication():
    published = datetime(2020, 1, 1, 12, 30, 0, 123456, tzinfo=UTC)
    row = {"id": UUID(int=1), "name": "x", "content_type": "x", "content_length": 1,
           "checksums": [], "content_start": published, "content_end": published,
           "origin_date": published, "publication_date": published,
           "modification_date": published.astimezone(ZoneInfo("Europe/Paris")),
           "eviction_date": None, "online": True, "attributes": {}}
    options = QueryOptions()
    text = products.collection_text([row], options, count=None, next_link=None)
    assert text == dumped([row], options, count=None, next_link=None)
    assert text.count('"2020-01-01T12:30:00.123Z"') == 5


def test_a_stored_date_that_is_no_date_is_refused_by_both():
    row = {"id": UUID(int=1), "name": "x", "content_type": "x", "content_length": 1,
           "checksums": [], "content_start": datetime(2020, 1, 1, tzinfo=UTC),
           "content_end": datetime(2020, 1, 1, tzinfo=UTC),
           "origin_date": datetime(2020, 1, 1, tzinfo=UTC), "publication_date": None,
           "modification_date": datetime(2020, 1, 1, tzinfo=UTC), "eviction_date": None,
           "online": True, "attributes": {"beginningDateTime": "2021-02-29T00:00:00.000000Z"}}
    options = QueryOptions(expand_attributes=True)
    for write in (products.collection_text, dumped):
        with pytest.raises(ValueError, match="day is out of range"):
            write([row], options, count=None, next_link=None)
