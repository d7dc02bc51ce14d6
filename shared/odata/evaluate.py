"""A checked `$filter` evaluated against one product, for Subscription matching.

The product is a mapping shaped like a `products` row (keys are column names: name, id,
content_type, content_length, origin_date, publication_date, modification_date,
eviction_date, online, content_start, content_end, attributes), as psycopg returns it
with `dict_row`. Same semantics as the SQL in `sql.py`, including three-valued logic:
`evaluate` returns True, False or None (SQL's NULL); `matches` is what a WHERE selects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from shared.core.attributes import KNOWN, AttributeType
from shared.core.s1time import format_canonical
from shared.odata import ast
from shared.odata.ast import Kind
from shared.odata.properties import PROPERTIES
from shared.odata.semantics import ascii_case, compare_python, match_python

Truth = bool | None
_Element = tuple[str, object]


def matches(node: ast.Bool, product: Mapping[str, object]) -> bool:
    """True when a `WHERE <filter>` would select this product."""
    return evaluate(node, product) is True


def evaluate(node: ast.Bool, product: Mapping[str, object]) -> Truth:
    return _Evaluator(product, None).condition(node)


def element_type(name: str, value: object) -> AttributeType | None:
    """The type an attribute is shown and filtered with (shared.core.attributes.type_of, except
    that values no attribute type can hold belong to none)."""
    known = KNOWN.get(name)
    if known is not None:
        return known
    if isinstance(value, bool):
        return AttributeType.BOOLEAN
    if isinstance(value, int):
        return AttributeType.INTEGER
    if isinstance(value, float):
        return AttributeType.DOUBLE
    if isinstance(value, str):
        return AttributeType.STRING
    return None


def _typed(value: object, kind: Kind) -> object:
    """An attribute's jsonb value read as `kind`, or None (the SQL CASE ... END)."""
    if kind in (Kind.STRING, Kind.DATETIME):
        return value if isinstance(value, str) else None
    if kind is Kind.BOOLEAN:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # repr is the text json.dumps wrote to jsonb, so this is the numeric SQL compares.
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _attributes(product: Mapping[str, object]) -> dict[str, object]:
    stored = product.get("attributes")
    if isinstance(stored, (str, bytes)):
        stored = json.loads(stored)
    return stored if isinstance(stored, dict) else {}


def _and(values: Iterator[Truth]) -> Truth:
    result: Truth = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _or(values: Iterator[Truth]) -> Truth:
    result: Truth = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


class _Evaluator:
    def __init__(self, product: Mapping[str, object], element: _Element | None) -> None:
        self.product = product
        self.element = element

    def value(self, node: ast.Value) -> object:
        if isinstance(node, ast.Property):
            raw = self.product.get(PROPERTIES[node.path].column)
            if raw is None:
                return None
            if node.kind is Kind.GUID and not isinstance(raw, UUID):
                return UUID(str(raw))
            if node.kind is Kind.DATETIME and isinstance(raw, datetime) and raw.tzinfo is None:
                return raw.replace(tzinfo=UTC)
            return raw
        if isinstance(node, ast.Literal):
            return node.value
        if isinstance(node, ast.Call):
            inner = self.value(node.arg)
            return None if inner is None else ascii_case(node.function, str(inner))
        assert self.element is not None, "attribute member outside a lambda"
        if isinstance(node, ast.AttrName):
            return self.element[0]
        return _typed(self.element[1], node.kind)

    def literal(self, operand: ast.Value, literal: ast.Literal) -> object:
        if isinstance(operand, ast.AttrValue) and operand.kind is Kind.DATETIME:
            assert isinstance(literal.value, datetime)
            return format_canonical(literal.value)
        return literal.value

    def condition(self, node: ast.Bool) -> Truth:
        if isinstance(node, ast.Compare):
            left = self.value(node.operand)
            if left is None:
                return None
            return compare_python(node.op, left, self.literal(node.operand, node.literal))
        if isinstance(node, ast.IsNull):
            return self.value(node.operand) is None
        if isinstance(node, ast.In):
            left = self.value(node.operand)
            if left is None:
                return None
            return any(left == self.literal(node.operand, v) for v in node.values)
        if isinstance(node, ast.Match):
            subject = self.value(node.operand)
            if subject is None:
                return None
            return match_python(node.function, str(subject), node.pattern)
        if isinstance(node, ast.And):
            return _and(self.condition(i) for i in node.items)
        if isinstance(node, ast.Or):
            return _or(self.condition(i) for i in node.items)
        if isinstance(node, ast.Not):
            inner = self.condition(node.item)
            return None if inner is None else not inner
        if isinstance(node, ast.Const):
            return node.value
        if isinstance(node, ast.BoolValue):
            value = self.value(node.operand)
            return None if value is None else bool(value)
        if isinstance(node, ast.Any):
            for element in self.elements(node.type):
                if node.body is None or self.within(element).condition(node.body) is True:
                    return True
            return False
        if isinstance(node, ast.All):
            return all(self.within(element).condition(node.body) is True
                       for element in self.elements(node.type))
        raise TypeError(f"not a condition: {node!r}")  # pragma: no cover

    def elements(self, type_: AttributeType) -> Iterator[_Element]:
        for name, value in _attributes(self.product).items():
            if element_type(name, value) is type_:
                yield name, value

    def within(self, element: _Element) -> _Evaluator:
        return _Evaluator(self.product, element)
