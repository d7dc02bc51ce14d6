"""OData v4 query part of the PRIP/AUXIP interface: `$filter` grammar and checked AST,
compilation to parameterised SQL, in-memory evaluation (subscriptions), query options.

The prip function needs:
    options = parse_query_options(request.args)          # ODataError -> 400
    page = fetch_products(conn, options)                 # rows, count, has_more
Subscriptions:
    node = parse_filter(filter_param)                    # at creation: ODataError -> 400
    matches(node, product_row)                           # at publication
"""

from shared.odata.ast import Bool
from shared.odata.errors import ODataError
from shared.odata.evaluate import evaluate, matches
from shared.odata.options import MAX_TOP, OrderKey, QueryOptions, parse_query_options
from shared.odata.parser import parse_filter
from shared.odata.products_query import (
    PRODUCT_COLUMNS,
    ProductsPage,
    ProductsQuery,
    build_products_query,
    fetch_products,
)
from shared.odata.sql import compile_filter

__all__ = [
    "Bool", "MAX_TOP", "ODataError", "OrderKey", "PRODUCT_COLUMNS", "ProductsPage",
    "ProductsQuery", "QueryOptions", "build_products_query", "compile_filter", "evaluate",
    "fetch_products", "matches", "parse_filter", "parse_query_options",
]
