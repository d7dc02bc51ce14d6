"""`$count` of all products and of one productType comes from the per-type totals the
catalogue's triggers keep (migration 0009): it must equal count(*) of the rows through
every change a product goes through (publish, evict, delete, type change, truncate, bulk
insert) and under a concurrent publication. Changes are rolled back or undone: the seeded
catalogue stays as the other tests expect it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shared.odata import build_products_query, fetch_products, parse_query_options

TYPES = ("AUX_POEORB", "AUX_RESORB", "AUX_CAL", "AUX_PP1", "MPL_ORBPRE", "NONE_SUCH")
_COPY = ("logical_name, name, status, product_type, platform_serial, content_type,"
         " content_length, content_start, content_end, origin_date, publication_date,"
         " modification_date, eviction_date, online, attributes, fingerprint, layout,"
         " archive_key")


def _type_filter(product_type: str) -> str:
    return ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            f"att/OData.CSC.StringAttribute/Value eq '{product_type}')")


def api_count(conn: psycopg.Connection, product_type: str | None = None) -> int | None:
    params = {"$count": "true", "$top": "0"}
    if product_type is not None:
        params["$filter"] = _type_filter(product_type)
    return fetch_products(conn, parse_query_options(params)).count


def row_count(conn: psycopg.Connection, product_type: str | None = None) -> int:
    where = "" if product_type is None else " AND product_type = %s"
    params = () if product_type is None else (product_type,)
    found = conn.execute("SELECT count(*) FROM products WHERE status = 'published'" + where,
                         params).fetchone()
    assert found is not None
    return int(found[0])


def assert_exact(conn: psycopg.Connection) -> None:
    assert api_count(conn) == row_count(conn)
    for kind in TYPES:
        assert api_count(conn, kind) == row_count(conn, kind), kind


@pytest.fixture
def tx(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with conn.transaction(force_rollback=True):
        yield conn


def _copy_of(conn: psycopg.Connection, product_type: str, status: str, n: int) -> list[str]:
    """n new products made from a published one of the type; their ids."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for i, new in enumerate(ids):
        conn.execute(
            f"INSERT INTO products (id, {_COPY})"
            f" SELECT %s, logical_name || %s, name || %s, %s, {_COPY.split(', ', 3)[3]}"
            " FROM products WHERE product_type = %s AND status = 'published' LIMIT 1",
            (new, f"-c{i}", f"-c{i}", status, product_type))
    return ids


def test_the_totals_are_the_counts_of_the_seeded_catalogue(conn: psycopg.Connection) -> None:
    assert api_count(conn) > 0
    assert_exact(conn)


def test_only_the_two_shapes_read_the_totals() -> None:
    def count_sql(params: dict[str, str]) -> str:
        count = build_products_query(parse_query_options({"$count": "true", **params})).count
        assert count is not None
        return count.as_string(None)

    assert "product_counts" in count_sql({})
    assert "product_counts" in count_sql({"$filter": _type_filter("AUX_CAL")})
    for other in (_type_filter("AUX_CAL") + " and Online eq true",
                  _type_filter("AUX_CAL").replace("eq 'AUX_CAL'", "ne 'AUX_CAL'"),
                  _type_filter("AUX_CAL").replace("'productType'", "'platformShortName'"),
                  "contains(Name,'AUX_CAL')"):
        assert "product_counts" not in count_sql({"$filter": other}), other


def test_every_change_of_a_product_keeps_the_totals_exact(tx: psycopg.Connection) -> None:
    conn = tx
    _copy_of(conn, "AUX_CAL", "published", 3)  # one statement per row
    _copy_of(conn, "AUX_RESORB", "packaged", 2)
    assert_exact(conn)
    conn.execute("UPDATE products SET status = 'published' WHERE name LIKE '%%-c_'"
                 " AND status = 'packaged'")  # publish
    assert_exact(conn)
    conn.execute("UPDATE products SET status = 'evicted', online = false"
                 " WHERE id = (SELECT id FROM products WHERE product_type = 'AUX_POEORB'"
                 " AND status = 'published' LIMIT 1)")  # evict
    conn.execute("UPDATE products SET online = NOT online WHERE status = 'published'")
    conn.execute("UPDATE products SET product_type = 'AUX_PP1'"
                 " WHERE name LIKE '%%AUX_CAL%%-c0'")
    assert_exact(conn)
    conn.execute("DELETE FROM products WHERE product_type = 'AUX_RESORB'")
    assert_exact(conn)
    # A bulk insert of many types in one statement.
    conn.execute(f"INSERT INTO products (id, {_COPY}) SELECT gen_random_uuid(),"
                 f" logical_name || '-b', name || '-b', {_COPY.split(', ', 2)[2]}"
                 " FROM products")
    assert_exact(conn)
    conn.execute("TRUNCATE products CASCADE")
    assert api_count(conn) == 0
    assert_exact(conn)


def test_a_concurrent_publication_is_counted_when_it_commits(conn: psycopg.Connection,
                                                              odata_url: str) -> None:
    before = api_count(conn, "AUX_CAL")
    ids: list[str] = []
    with psycopg.connect(odata_url) as writer:
        try:
            ids = _copy_of(writer, "AUX_CAL", "published", 2)  # not committed yet
            assert api_count(conn, "AUX_CAL") == before == row_count(conn, "AUX_CAL")
            writer.commit()
            assert api_count(conn, "AUX_CAL") == before + 2 == row_count(conn, "AUX_CAL")
            assert_exact(conn)
        finally:
            writer.rollback()
            writer.execute("DELETE FROM products WHERE id = ANY(%s::uuid[])", (ids,))
            writer.commit()
    assert api_count(conn, "AUX_CAL") == before
    assert_exact(conn)
