"""Predicates a `$filter` implies, given auxip's naming invariants, so that PostgreSQL can
use the type/unit/validity indexes. They are only ever *added* beside the original
predicates (results stay exact), and only from the top-level AND chain: under `not` an
added predicate could turn a NULL into FALSE and change the answer.

Invariants relied on (guaranteed by ingestion, see shared/core/naming.py):
- every published name starts `S1<unit>_` and `platform_serial` is that unit ('' for `_`);
- a name containing one of EXCLUSIVE_TYPES has exactly that `product_type` (type strings
  occur in names only as the type field; no served type contains another);
- the `productType` attribute is the `product_type` and `platformSerialIdentifier` the
  `platform_serial` (shared/core/metadata.py takes both from the name, and refuses content whose
  header says another type), so the usual PRIP attribute query uses the type indexes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.core.attributes import AttributeType
from shared.odata import ast

# The product types a client may name in contains(Name, ...).
PRODUCT_TYPES: frozenset[str] = frozenset({
    "AUX_CAL", "AUX_INS", "AUX_PP1", "AUX_PP2", "AUX_SCS", "AUX_SCF", "AUX_ITC", "AUX_ML2",
    "AUX_ICE", "AUX_WAV", "AUX_WND", "AUX_TEC", "AUX_TRO", "AUX_POEORB", "AUX_RESORB",
    "AUX_PREORB", "AUX_RESATT", "AMH_ERRMAT", "AMV_ERRMAT", "MPL_ORBPRE", "MPL_ORBSCT",
    "MPL_TIMELINE",
})


def _served_types() -> frozenset[str]:
    # Extra types can be configured (AUXIP_EXTRA_PRODUCT_TYPES); a configured type that
    # contains a listed one (say AUX_CAL___) would break the implication for that one.
    try:
        from shared.core.naming import DEFAULT_TYPES
    except Exception:  # naming not importable: only the built-in types are served
        return PRODUCT_TYPES
    return PRODUCT_TYPES | frozenset(DEFAULT_TYPES)


def exclusive_types(served: frozenset[str]) -> frozenset[str]:
    """Listed types that no other served type contains."""
    return frozenset(
        t for t in PRODUCT_TYPES if not any(t in other for other in served if other != t)
    )


EXCLUSIVE_TYPES = exclusive_types(_served_types())

START = "ContentDate/Start"
END = "ContentDate/End"


@dataclass(frozen=True)
class RangeCondition:
    """`tstzrange(content_start, content_end, '[]') <operator> tstzrange(lower, upper, bounds)`."""

    operator: str  # && &< &>
    lower: datetime | None
    upper: datetime | None
    bounds: str  # '()' '(]' '[)' '[]'


@dataclass(frozen=True)
class Implied:
    platform_serials: tuple[str, ...] = ()
    product_types: tuple[str, ...] = ()
    ranges: tuple[RangeCondition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.platform_serials or self.product_types or self.ranges)


def _range(compare: ast.Compare) -> RangeCondition | None:
    if not isinstance(compare.operand, ast.Property) or compare.literal.kind is not ast.Kind.DATETIME:
        return None
    t = compare.literal.value
    assert isinstance(t, datetime)
    if compare.operand.path == START:
        # [s, e] overlaps (-inf, t) exactly when s < t; lies right of (t, inf) when s > t.
        return {
            "lt": RangeCondition("&&", None, t, "()"),
            "le": RangeCondition("&&", None, t, "(]"),
            "eq": RangeCondition("&&", t, t, "[]"),
            "gt": RangeCondition("&>", t, None, "()"),
            "ge": RangeCondition("&>", t, None, "[)"),
        }.get(compare.op)
    if compare.operand.path == END:
        return {
            "gt": RangeCondition("&&", t, None, "()"),
            "ge": RangeCondition("&&", t, None, "[)"),
            "eq": RangeCondition("&&", t, t, "[]"),
            "lt": RangeCondition("&<", None, t, "()"),
            "le": RangeCondition("&<", None, t, "(]"),
        }.get(compare.op)
    return None


def _name_pattern(node: ast.Bool) -> tuple[str, str] | None:
    """(function, text) of a condition that says the Name holds `text` at some place."""
    if isinstance(node, ast.Match) and node.operand == ast.Property("Name", ast.Kind.STRING):
        return node.function, node.pattern
    if (isinstance(node, ast.Compare) and node.op == "eq"
            and node.operand == ast.Property("Name", ast.Kind.STRING)):
        return "eq", str(node.literal.value)
    return None


_COLUMN_OF_ATTRIBUTE = {"productType": "type", "platformSerialIdentifier": "serial"}


def _attribute_fact(node: ast.Bool) -> tuple[str, str] | None:
    """("type" | "serial", value) when `node` is a string-attribute any() whose body's AND
    chain says `att/Name eq 'productType'` and `att/Value eq '<value>'` of the same att."""
    if not (isinstance(node, ast.Any) and node.type is AttributeType.STRING and node.body):
        return None
    conjuncts = node.body.items if isinstance(node.body, ast.And) else (node.body,)
    names = {c.literal.value for c in conjuncts
             if isinstance(c, ast.Compare) and c.op == "eq"
             and isinstance(c.operand, ast.AttrName)}
    values = {c.literal.value for c in conjuncts
              if isinstance(c, ast.Compare) and c.op == "eq"
              and isinstance(c.operand, ast.AttrValue)}
    if len(names) != 1 or len(values) != 1:
        return None  # none, or contradictory: the exact predicate answers alone
    [name], [value] = names, values
    column = _COLUMN_OF_ATTRIBUTE.get(str(name))
    if column is None or not isinstance(value, str):
        return None
    if column == "serial" and len(value) > 1:
        return None  # not a unit letter: nothing to say about platform_serial
    return column, value


def implied(node: ast.Bool) -> Implied:
    conjuncts = node.items if isinstance(node, ast.And) else (node,)
    serials: list[str] = []
    types: list[str] = []
    ranges: list[RangeCondition] = []
    for item in conjuncts:
        found = _name_pattern(item)
        if found is not None:
            function, text = found
            if function in ("startswith", "eq") and len(text) >= 3 and text.startswith("S1"):
                serials.append("" if text[2] == "_" else text[2])
            types.extend(t for t in sorted(EXCLUSIVE_TYPES) if t in text)
        elif isinstance(item, ast.Compare):
            condition = _range(item)
            if condition is not None:
                ranges.append(condition)
        elif (fact := _attribute_fact(item)) is not None:
            (types if fact[0] == "type" else serials).append(fact[1])
    if not types:
        # The validity index leads with the type; without it the range alone misleads the
        # planner more than it helps.
        ranges = []
    return Implied(tuple(dict.fromkeys(serials)), tuple(dict.fromkeys(types)), tuple(ranges))
