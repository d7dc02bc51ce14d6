"""Literals of a `$filter`: from token text to their final Python value, and coercion to
the type of what they are compared with."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from uuid import UUID

from shared.core.s1time import OPEN_END
from shared.odata import ast
from shared.odata.ast import Kind
from shared.odata.errors import INVALID_FILTER, ODataError

MAX_NUMBER_LENGTH = 64
_MAX_EXPONENT = 1000
_INT64 = (-(2**63), 2**63 - 1)

# Displayed EvictionDate/ContentDate End of open-ended products is 9999-12-31T23:59:59.999Z
# (milliseconds) while the catalogue stores the last microsecond: a literal inside that
# last millisecond means the open end, so `EvictionDate eq 9999-12-31T23:59:59.999Z` works.
_OPEN_END_DISPLAYED = OPEN_END.replace(microsecond=999000)


_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]+))?)?([Zz]|[+\- ][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)


def parse_datetime(text: str) -> datetime:
    """An OData DateTimeOffset literal, as an aware UTC datetime (microseconds, truncated).

    A missing offset is read as UTC: lenient, since every auxip time is UTC.
    """
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ODataError(INVALID_FILTER, f"not a valid DateTimeOffset: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        tz = UTC
        if offset and offset not in ("Z", "z"):
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if minutes >= 60:
                raise ValueError("offset minutes out of range")
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        value = datetime(int(year), int(month), int(day), int(hour), int(minute),
                         int(second or 0), micro, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ODataError(INVALID_FILTER, f"not a valid DateTimeOffset: {text[:40]!r} ({exc})"
                         ) from None
    if value >= _OPEN_END_DISPLAYED:
        return OPEN_END
    return value


def parse_guid(text: str) -> UUID:
    try:
        return UUID(text.strip())
    except ValueError:
        raise ODataError(INVALID_FILTER, f"not a valid Guid: {text[:40]!r}") from None


def checked_string(text: str) -> str:
    if "\x00" in text:
        raise ODataError(INVALID_FILTER, "string literal contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ODataError(INVALID_FILTER, "string literal is not valid Unicode") from None
    return text


def from_token(token: str, text: str, start: int | None = None) -> ast.Literal:
    """The literal a token of filter.lark stands for."""
    if token == "STRING":
        return ast.Literal(checked_string(text[1:-1].replace("''", "'")), Kind.STRING, start)
    if token in ("INT", "DECIMAL") and len(text) > MAX_NUMBER_LENGTH:
        raise ODataError(INVALID_FILTER, f"number literal longer than {MAX_NUMBER_LENGTH} digits")
    if token == "INT":
        return ast.Literal(int(text), Kind.INT64, start)
    if token == "DECIMAL":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ODataError(INVALID_FILTER, f"not a valid number: {text!r}") from None
        if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
            raise ODataError(INVALID_FILTER, f"number out of range: {text!r}")
        return ast.Literal(number, Kind.NUMBER, start)
    if token == "DATETIME":
        return ast.Literal(parse_datetime(text), Kind.DATETIME, start)
    if token == "GUID":
        return ast.Literal(parse_guid(text), Kind.GUID, start)
    if token in ("TRUE", "FALSE"):
        return ast.Literal(token == "TRUE", Kind.BOOLEAN, start)
    if token == "NULL":
        return ast.Literal(None, Kind.NULL, start)
    if token == "TYPED":
        prefix, _, rest = text.partition("'")
        inner = rest[:-1]
        if prefix.lower() == "guid":
            return ast.Literal(parse_guid(inner), Kind.GUID, start)
        return ast.Literal(parse_datetime(inner), Kind.DATETIME, start)
    raise ODataError(INVALID_FILTER, f"unsupported literal {text[:40]!r}")


def describe(node: ast.Value) -> str:
    if isinstance(node, ast.Property):
        return node.path
    if isinstance(node, ast.Call):
        return f"{node.function}({describe(node.arg)})"
    if isinstance(node, ast.AttrName):
        return "the attribute Name"
    if isinstance(node, ast.AttrValue):
        return f"the {node.type.odata_type} Value"
    return f"the literal {show(node)}"


def show(lit: ast.Literal) -> str:
    if lit.kind is Kind.NULL:
        return "null"
    text = repr(lit.value) if lit.kind is Kind.STRING else str(lit.value)
    return text[:40]


def coerce(lit: ast.Literal, kind: Kind, against: str) -> ast.Literal:
    """The literal as a value of `kind`, or ODataError naming what it was compared with."""
    if lit.kind is kind:
        if kind is Kind.INT64 and not _INT64[0] <= lit.value <= _INT64[1]:  # type: ignore
            raise ODataError(INVALID_FILTER, f"{show(lit)} is out of range for {against}")
        return lit
    if kind is Kind.NUMBER and lit.kind is Kind.INT64:
        return ast.Literal(Decimal(lit.value), Kind.NUMBER, lit.start)  # type: ignore[arg-type]
    if kind is Kind.DATETIME and lit.kind is Kind.STRING:
        return ast.Literal(parse_datetime(lit.value), Kind.DATETIME, lit.start)  # type: ignore[arg-type]
    if kind is Kind.GUID and lit.kind is Kind.STRING:
        return ast.Literal(parse_guid(lit.value), Kind.GUID, lit.start)  # type: ignore[arg-type]
    wanted = {Kind.INT64: "an integer", Kind.NUMBER: "a number"}.get(kind, f"a {kind.value}")
    raise ODataError(
        INVALID_FILTER, f"{against} needs {wanted}, got {lit.kind.value} {show(lit)}")
