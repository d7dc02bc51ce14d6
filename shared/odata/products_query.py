"""The SELECT (and count) behind `GET /odata/v1/Products`.

Only published products are visible. The page query fetches one row more than `$top` so
the caller knows whether to emit `@odata.nextLink`; `id` always ends the ORDER BY so that
pages are stable under `$skip`.

`$count` of all products, or of one productType (`Attributes/...any(att:att/Name eq
'productType' and att/.../Value eq 'X')`, the filter alone), reads the per-type totals the
catalogue's triggers keep (migration 0009_product_counts): counting up to a million rows
takes tens of ms, summing the totals well under one, and the totals are exact (kept in the
transaction that publishes or evicts). Any other filter is counted on the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from shared.core.attributes import AttributeType
from shared.core.recently_used import RecentlyUsed
from shared.odata import ast, shapes
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
    count: sql.Composable | None  # None unless $count=true
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


_TOTAL = sql.SQL("SELECT coalesce(sum(published), 0)::bigint FROM product_counts")
_TOTAL_OF_TYPE = sql.SQL(
    "SELECT coalesce(sum(published), 0)::bigint FROM product_counts WHERE product_type = %s")


def counted_type(node: ast.Bool) -> str | None:
    """X when the filter is exactly the productType attribute's `eq X` (in either order in
    the lambda), the one shape besides "all" that the per-type totals answer. The
    attribute is the `product_type` column (ingestion takes both from the name, see
    shared/odata/implied.py), so the total of the type is the count."""
    if not (isinstance(node, ast.Any) and node.type is AttributeType.STRING
            and isinstance(node.body, ast.And) and len(node.body.items) == 2):
        return None
    names = [c.literal.value for c in node.body.items
             if isinstance(c, ast.Compare) and c.op == "eq" and isinstance(c.operand, ast.AttrName)]
    values = [c.literal.value for c in node.body.items
              if isinstance(c, ast.Compare) and c.op == "eq"
              and isinstance(c.operand, ast.AttrValue) and c.literal.kind is ast.Kind.STRING]
    if names == ["productType"] and len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return None


def _count(options: QueryOptions, where: Frag) -> Frag:
    if options.filter is None:
        return Frag(_TOTAL)
    product_type = counted_type(options.filter)
    if product_type is not None:
        return Frag(_TOTAL_OF_TYPE, (product_type,))
    return fragment("SELECT count(*) FROM products WHERE {}", where)


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
    count = _count(options, where) if options.count else None
    assert isinstance(page.sql, sql.Composed)
    return ProductsQuery(
        select=page.sql,
        params=page.params,
        count=count.sql if count is not None else None,  # type: ignore[arg-type]
        count_params=count.params if count is not None else (),
        top=options.top,
    )


@dataclass(frozen=True)
class _Statements:
    """A ProductsQuery as the bytes psycopg sends (what it renders a Composed to)."""

    select: bytes
    params: tuple[object, ...]
    count: bytes | None
    count_params: tuple[object, ...]
    top: int


def _rendered(options: QueryOptions) -> _Statements:
    query = build_products_query(options)
    # No connection: the SQL is ASCII and names only plain columns, rendered the same
    # for every session (nothing here is a sql.Literal, which a session would escape).
    return _Statements(query.select.as_bytes(None), query.params,
                       None if query.count is None else query.count.as_bytes(None),
                       query.count_params, query.top)


# Clients repeat their queries (each field query of ODATA.md is one text a client polls
# with): the statements of the last options are kept, which spares compiling the filter
# and rendering the SQL (0.2-0.5 ms). Options are immutable (frozen dataclasses down to
# the literals); equal options give the same statements. Long filters are not kept.
_REMEMBERED = 256
_REMEMBERED_FILTER_LENGTH = 2048
_remembered = lru_cache(maxsize=_REMEMBERED)(_rendered)


@dataclass(frozen=True)
class _Template:
    """The statements of one filter shape (and the other options), with the parameters
    as functions of the shape's slots."""

    select: bytes
    params: tuple[shapes.Param, ...]
    count: bytes | None
    count_params: tuple[shapes.Param, ...]
    top: int

    def statements(self, values: shapes.Values) -> _Statements:
        return _Statements(self.select, tuple(p(values) for p in self.params), self.count,
                           tuple(p(values) for p in self.count_params), self.top)


# Pollers repeat a shape with fresh literals: its statements are kept by shape (the
# options with the filter's shape key), which spares the SQL build of each request.
_SHAPED: RecentlyUsed[tuple[QueryOptions, shapes.Key], _Template | bool] = RecentlyUsed(
    _REMEMBERED)


def _template(options: QueryOptions, slots: shapes.Slots) -> _Template | None:
    """Built with the request's literals and two other sets, which must give the same SQL
    text and parameters that each are a constant or one known function of one slot."""
    seen = [slots.values]
    for k in (1, 2):
        other = shapes.perturbed(slots.values, k)
        if other is None:
            return None
        seen.append(other)
    built = [_rendered(replace(options, filter=slots.shape.fill(v))) for v in seen]
    if any(b.select != built[0].select or b.count != built[0].count for b in built):
        return None
    params = shapes.param_template([(b.params, v) for b, v in zip(built, seen, strict=True)])
    counted = shapes.param_template([(b.count_params, v)
                                     for b, v in zip(built, seen, strict=True)])
    if params is None or counted is None:
        return None
    first = built[0]
    return _Template(first.select, params, first.count, counted, first.top)


def _statements(options: QueryOptions) -> _Statements:
    if options.filter_text is not None and len(options.filter_text) > _REMEMBERED_FILTER_LENGTH:
        return _rendered(options)
    slots = options.filter_slots
    if slots is None:
        return _remembered(options)
    key = (replace(options, filter=None, filter_text=None, filter_slots=None), slots.shape.key)
    template = _SHAPED.get(key)
    if template is None:
        template = _template(options, slots) or False
        _SHAPED.put(key, template)
    if isinstance(template, _Template):
        return template.statements(slots.values)
    return _remembered(options)


def fetch_products(conn: psycopg.Connection, options: QueryOptions) -> ProductsPage:
    """Run the page (and count) query. Statements are not prepared: a generic plan cannot
    see the literals that decide between the validity, publication and GIN indexes."""
    query = _statements(options)
    total = None
    if query.count is not None:
        found = conn.execute(query.count, query.count_params, prepare=False).fetchone()
        total = int(found[0]) if found else 0
    if query.top == 0 and total is not None:
        # `$top=0&$count=true` asks for the count alone: a row exists past `$skip` exactly
        # when the count says so, without the page query (which may cost more than the
        # count read from the totals).
        return ProductsPage([], total, total > options.skip)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(query.select, query.params, prepare=False).fetchall()
    return ProductsPage(rows[: query.top], total, len(rows) > query.top)
