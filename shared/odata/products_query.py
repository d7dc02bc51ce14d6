"""The SELECT (and count) behind `GET /odata/v1/Products`.

Only published products are visible. The page query fetches one row more than `$top` so
the caller knows whether to emit `@odata.nextLink`; `id` always ends the ORDER BY so that
pages are stable under `$skip`.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from shared.odata.options import OrderKey, QueryOptions
from shared.odata.properties import PROPERTIES
from shared.odata.sql import Frag, compile_filter, fragment, join, param

# What the prip function needs to render a Product (plus attributes when expanded).
PRODUCT_COLUMNS = (
    "id", "name", "content_type", "content_length", "checksums", "content_start",
    "content_end", "origin_date", "publication_date", "modification_date", "eviction_date",
    "online", "product_type", "platform_serial",
)
ATTRIBUTES_COLUMN = "attributes"
# Pollers page through new publications: this order is served by products_publication.
DEFAULT_ORDER = (OrderKey("PublicationDate"),)

# A fixed literal, not a parameter: the planner must see it to use the partial indexes.
_PUBLISHED = Frag(sql.SQL("status = 'published'"))


@dataclass(frozen=True)
class ProductsQuery:
    select: sql.Composed
    params: tuple[object, ...]
    count: sql.Composed | None  # None unless $count=true
    count_params: tuple[object, ...]
    top: int  # the page size; `select` returns up to top + 1 rows


@dataclass(frozen=True)
class ProductsPage:
    rows: list[dict[str, object]]  # at most $top rows, in order
    count: int | None  # total matching rows when $count=true
    has_more: bool  # another page exists: emit @odata.nextLink ($skip + $top)


def where_clause(options: QueryOptions) -> Frag:
    if options.filter is None:
        return _PUBLISHED
    return join(" AND ", [_PUBLISHED, compile_filter(options.filter)])


def order_clause(keys: tuple[OrderKey, ...]) -> sql.Composable:
    keys = keys or DEFAULT_ORDER
    parts = [
        sql.SQL("{} {}").format(sql.Identifier(PROPERTIES[k.path].column),
                                sql.SQL("DESC" if k.descending else "ASC"))
        for k in keys
    ]
    if not any(k.path == "Id" for k in keys):
        # Same direction as the last key, so an index on (key, id) can serve both ways.
        parts.append(sql.SQL("id DESC" if keys[-1].descending else "id ASC"))
    return sql.SQL(", ").join(parts)


def build_products_query(options: QueryOptions) -> ProductsQuery:
    columns = PRODUCT_COLUMNS + ((ATTRIBUTES_COLUMN,) if options.expand_attributes else ())
    where = where_clause(options)
    page = fragment(
        "SELECT {} FROM products WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        Frag(sql.SQL(", ").join(sql.Identifier(c) for c in columns)),
        where,
        Frag(order_clause(options.orderby)),
        param(options.top + 1),
        param(options.skip),
    )
    count = fragment("SELECT count(*) FROM products WHERE {}", where) if options.count else None
    assert isinstance(page.sql, sql.Composed)
    return ProductsQuery(
        select=page.sql,
        params=page.params,
        count=count.sql if count is not None else None,  # type: ignore[arg-type]
        count_params=count.params if count is not None else (),
        top=options.top,
    )


def fetch_products(conn: psycopg.Connection, options: QueryOptions) -> ProductsPage:
    """Run the page (and count) query. Statements are not prepared: a generic plan cannot
    see the literals that decide between the validity, publication and GIN indexes."""
    query = build_products_query(options)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(query.select, query.params, prepare=False).fetchall()
    total = None
    if query.count is not None:
        found = conn.execute(query.count, query.count_params, prepare=False).fetchone()
        total = int(found[0]) if found else 0
    return ProductsPage(rows[: query.top], total, len(rows) > query.top)
