"""Raw nodes: what the grammar callbacks build while parsing, before names and types are
checked. Each knows its depth, so nesting is refused before anything recurses over it."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.odata.errors import INVALID_FILTER, ODataError

MAX_DEPTH = 100


@dataclass(frozen=True)
class Raw:
    depth: int = field(default=1, kw_only=True)


@dataclass(frozen=True)
class RawLiteral(Raw):
    token: str  # terminal name
    text: str
    start: int | None = field(default=None, kw_only=True)  # offset in the $filter text


@dataclass(frozen=True)
class RawLambda(Raw):
    op: str
    variable: str | None
    body: Raw | None


@dataclass(frozen=True)
class RawPath(Raw):
    segments: tuple[str, ...]
    lambda_: RawLambda | None


@dataclass(frozen=True)
class RawCall(Raw):
    name: str
    args: tuple[Raw, ...]


@dataclass(frozen=True)
class RawCompare(Raw):
    op: str
    left: Raw
    right: Raw


@dataclass(frozen=True)
class RawIn(Raw):
    operand: Raw
    items: tuple[Raw, ...]


@dataclass(frozen=True)
class RawAnd(Raw):
    items: tuple[Raw, ...]


@dataclass(frozen=True)
class RawOr(Raw):
    items: tuple[Raw, ...]


@dataclass(frozen=True)
class RawNot(Raw):
    item: Raw


def depth_of(*children: Raw | None) -> int:
    depth = 1 + max((c.depth for c in children if c is not None), default=0)
    if depth > MAX_DEPTH:
        raise ODataError(INVALID_FILTER, f"$filter nested deeper than {MAX_DEPTH} levels")
    return depth


