"""The system query options of a Products request, parsed and checked.

Option names are case-insensitive (OData 4.01) and need their `$`; parameters without `$`
are not ours (tokens, cache busters) and are ignored. Unknown `$` options are refused
rather than silently ignored: a client relying on `$search` must learn it is unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shared.odata import ast
from shared.odata.errors import (
    INVALID_COUNT,
    INVALID_EXPAND,
    INVALID_FORMAT,
    INVALID_OPTION,
    INVALID_ORDERBY,
    INVALID_SELECT,
    INVALID_SKIP,
    INVALID_TOP,
    ODataError,
)
from shared.odata.parser import read_filter
from shared.odata.properties import PROPERTIES
from shared.odata.shapes import Slots

MAX_TOP = 1000
DEFAULT_TOP = MAX_TOP
MAX_SKIP = 2**63 - 1 - MAX_TOP  # OFFSET is a bigint; leave room for the look-ahead row
MAX_ORDERBY_KEYS = 12
_MAX_OPTION_LENGTH = 4096

SELECTABLE = ("Id", "Name", "ContentType", "ContentLength", "OriginDate", "PublicationDate",
              "ModificationDate", "EvictionDate", "Online", "Checksum", "ContentDate")
EXPANDABLE = ("Attributes", "Assets")

_INTEGER = re.compile(r"\+?[0-9]+", re.ASCII)
_ORDER_KEY = re.compile(r"([A-Za-z]+(?:/[A-Za-z]+)?)(?:\s+(asc|desc))?", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class OrderKey:
    path: str  # an OData property path, a key of properties.PROPERTIES
    descending: bool = False


@dataclass(frozen=True)
class QueryOptions:
    filter: ast.Bool | None = None
    filter_text: str | None = None
    # The filter's shape and literals (shapes.py), for products_query to re-use the SQL of
    # the shape; the filter itself is the whole truth, so not part of equality.
    filter_slots: Slots | None = field(default=None, compare=False, repr=False)
    orderby: tuple[OrderKey, ...] = ()
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    expand_attributes: bool = False
    expand_assets: bool = False
    select: tuple[str, ...] | None = None  # None: every property
    format: str = "json"


Params = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]


def _pairs(params: Params) -> list[tuple[str, str]]:
    """(name, value) pairs from a list of pairs, a werkzeug MultiDict or a plain mapping."""
    if isinstance(params, Mapping):
        lists = getattr(params, "lists", None)
        items = lists() if callable(lists) else params.items()
        pairs = []
        for name, value in items:
            values = [value] if isinstance(value, str) else list(value)
            pairs.extend((name, v) for v in values)
        return pairs
    return list(params)


def parse_query_options(params: Params) -> QueryOptions:
    """Check every `$` option of a Products request; ODataError for anything wrong."""
    seen: dict[str, list[str]] = {}
    for name, value in _pairs(params):
        if not isinstance(name, str) or not name.startswith("$"):
            continue
        if not isinstance(value, str):
            raise ODataError(INVALID_OPTION, f"{name[:40]} must be text")
        key = name.lower()
        if key not in _PARSERS:
            known = ", ".join(sorted(_PARSERS))
            raise ODataError(INVALID_OPTION,
                             f"unsupported query option {name[:40]!r}; supported: {known}")
        if key != "$expand" and key in seen:
            raise ODataError(INVALID_OPTION, f"{name[:40]} given more than once")
        if key != "$filter" and len(value) > _MAX_OPTION_LENGTH:
            raise ODataError(INVALID_OPTION, f"{name[:40]} longer than {_MAX_OPTION_LENGTH}")
        seen.setdefault(key, []).append(value)

    fields: dict[str, object] = {}
    for key, values in seen.items():
        fields.update(_PARSERS[key](values))
    return QueryOptions(**fields)  # type: ignore[arg-type]


def _filter(values: list[str]) -> dict[str, object]:
    text = values[0]
    if not text.strip():
        return {}  # `$filter=` from URL builders: no filter
    node, slots = read_filter(text)
    return {"filter": node, "filter_text": text, "filter_slots": slots}


def parse_orderby(text: str) -> tuple[OrderKey, ...]:
    if not text.strip():
        return ()
    keys: list[OrderKey] = []
    for part in text.split(","):
        match = _ORDER_KEY.fullmatch(part.strip())
        if match is None:
            raise ODataError(INVALID_ORDERBY,
                             f"$orderby: {part.strip()[:60]!r} is not 'Property [asc|desc]'")
        path, direction = match.groups()
        if path not in PROPERTIES:
            known = ", ".join(PROPERTIES)
            raise ODataError(INVALID_ORDERBY,
                             f"$orderby: cannot sort by {path[:60]!r}; sortable: {known}")
        keys.append(OrderKey(path, (direction or "asc").lower() == "desc"))
    if len(keys) > MAX_ORDERBY_KEYS:
        raise ODataError(INVALID_ORDERBY, f"$orderby: more than {MAX_ORDERBY_KEYS} keys")
    return tuple(keys)


def _orderby(values: list[str]) -> dict[str, object]:
    return {"orderby": parse_orderby(values[0])}


def _integer(value: str, option: str, code: str) -> int:
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise ODataError(code, f"{option} must be a non-negative integer, got {value[:40]!r}")
    digits = text.lstrip("+").lstrip("0") or "0"
    if len(digits) > 19:
        raise ODataError(code, f"{option} is too large")
    return int(digits)


def _top(values: list[str]) -> dict[str, object]:
    top = _integer(values[0], "$top", INVALID_TOP)
    if top > MAX_TOP:
        raise ODataError(INVALID_TOP, f"$top must be at most {MAX_TOP}, got {top}")
    return {"top": top}


def _skip(values: list[str]) -> dict[str, object]:
    skip = _integer(values[0], "$skip", INVALID_SKIP)
    if skip > MAX_SKIP:
        raise ODataError(INVALID_SKIP, f"$skip must be at most {MAX_SKIP}")
    return {"skip": skip}


def _count(values: list[str]) -> dict[str, object]:
    text = values[0].strip().lower()
    if text not in ("true", "false"):
        raise ODataError(INVALID_COUNT, f"$count must be true or false, got {values[0][:40]!r}")
    return {"count": text == "true"}


def _expand(values: list[str]) -> dict[str, object]:
    wanted: set[str] = set()
    for value in values:
        for part in value.split(","):
            item = part.strip()
            if not item:
                continue
            if item not in EXPANDABLE:
                raise ODataError(
                    INVALID_EXPAND,
                    f"$expand: cannot expand {item[:60]!r}; expandable: {', '.join(EXPANDABLE)}")
            wanted.add(item)
    return {"expand_attributes": "Attributes" in wanted, "expand_assets": "Assets" in wanted}


def _select(values: list[str]) -> dict[str, object]:
    chosen: list[str] = []
    for part in values[0].split(","):
        item = part.strip()
        if not item:
            continue
        if item == "*":
            return {}
        if item not in SELECTABLE:
            raise ODataError(
                INVALID_SELECT,
                f"$select: unknown property {item[:60]!r}; selectable: {', '.join(SELECTABLE)}")
        chosen.append(item)
    return {"select": tuple(dict.fromkeys(chosen))} if chosen else {}


def _format(values: list[str]) -> dict[str, object]:
    text = values[0].strip().lower()
    if text == "json" or text.split(";")[0].strip() == "application/json":
        return {"format": "json"}
    raise ODataError(INVALID_FORMAT, f"$format: only json is supported, got {values[0][:40]!r}")


_PARSERS = {
    "$filter": _filter,
    "$orderby": _orderby,
    "$top": _top,
    "$skip": _skip,
    "$count": _count,
    "$expand": _expand,
    "$select": _select,
    "$format": _format,
}
