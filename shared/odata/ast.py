"""The checked form of a `$filter`: what `parser.parse_filter` returns, and what `sql` and
`evaluate` both read. Every node is typed and every literal already has its final Python
value, so the two back ends cannot disagree about what a literal means.

Value nodes (operands): Property, Literal, Call, AttrName, AttrValue.
Boolean nodes: Compare, IsNull, In, Match, And, Or, Not, Const, BoolValue, Any, All.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from shared.core.attributes import AttributeType


class Kind(StrEnum):
    STRING = "String"
    INT64 = "Int64"
    NUMBER = "Number"  # Integer and Double attribute values: compared as exact decimals
    DATETIME = "DateTimeOffset"
    GUID = "Guid"
    BOOLEAN = "Boolean"
    NULL = "Null"


LiteralValue = str | int | Decimal | datetime | UUID | bool | None


@dataclass(frozen=True)
class Property:
    """A Product property by its OData path (`Name`, `ContentDate/Start`)."""

    path: str
    kind: Kind


@dataclass(frozen=True)
class Literal:
    value: LiteralValue
    kind: Kind
    # Where the literal was written in the $filter text (None: made by the binder): lets
    # shapes.py re-use the AST of one text for another differing only in literals. Not
    # part of equality, which stays that of the value.
    start: int | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    """`tolower(x)` / `toupper(x)`: ASCII-only case mapping (names are ASCII)."""

    function: str
    arg: Value
    kind: Kind = Kind.STRING


@dataclass(frozen=True)
class AttrName:
    """`att/Name` inside a lambda over Attributes."""

    kind: Kind = Kind.STRING


@dataclass(frozen=True)
class AttrValue:
    """`att/Value` (or `att/OData.CSC.XAttribute/Value`) inside a lambda over Attributes."""

    type: AttributeType
    kind: Kind


Value = Property | Literal | Call | AttrName | AttrValue


@dataclass(frozen=True)
class Compare:
    """`operand op literal`; the binder always puts the literal on the right."""

    op: str  # eq ne gt ge lt le
    operand: Value
    literal: Literal


@dataclass(frozen=True)
class IsNull:
    operand: Value


@dataclass(frozen=True)
class In:
    operand: Value
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Match:
    function: str  # contains startswith endswith
    operand: Value
    pattern: str


@dataclass(frozen=True)
class And:
    items: tuple[Bool, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Bool, ...]


@dataclass(frozen=True)
class Not:
    item: Bool


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class BoolValue:
    """A Boolean operand used as a predicate: `Online`, `att/Value` of a BooleanAttribute."""

    operand: Value


@dataclass(frozen=True)
class Any:
    """`Attributes/OData.CSC.<type>Attribute/any(v: body)`; body None for `any()`."""

    type: AttributeType
    body: Bool | None
    variable: str | None = None


@dataclass(frozen=True)
class All:
    type: AttributeType
    body: Bool
    variable: str | None = None


Bool = Compare | IsNull | In | Match | And | Or | Not | Const | BoolValue | Any | All

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
