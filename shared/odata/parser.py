"""`$filter` text -> checked AST (`shared.odata.ast`).

Two steps: the LALR grammar in `filter.lark` builds raw nodes while it parses (no parse
tree, no recursion, so deep nesting cannot overflow the stack), then `_Binder` resolves
names, checks types and turns every literal into its final Python value. Anything a client
can get wrong ends as ODataError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from uuid import UUID

import lark
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from shared.attributes import AttributeType
from shared.odata import ast
from shared.odata.ast import Kind
from shared.odata.errors import INVALID_FILTER, ODataError
from shared.odata.properties import COLLECTION_NAME, COLLECTION_NAME_PATH, PROPERTIES
from shared.s1time import OPEN_END

MAX_FILTER_LENGTH = 32_768
MAX_DEPTH = 100
MAX_NUMBER_LENGTH = 64
_MAX_EXPONENT = 1000
_INT64 = (-(2**63), 2**63 - 1)

# Displayed EvictionDate/ContentDate End of open-ended products is 9999-12-31T23:59:59.999Z
# (milliseconds) while the catalogue stores the last microsecond: a literal inside that
# last millisecond means the open end, so `EvictionDate eq 9999-12-31T23:59:59.999Z` works.
_OPEN_END_DISPLAYED = OPEN_END.replace(microsecond=999000)

_ATTRIBUTE_CASTS = {t.odata_type: t for t in AttributeType}
_ATTRIBUTE_KINDS = {
    AttributeType.STRING: Kind.STRING,
    AttributeType.INTEGER: Kind.NUMBER,
    AttributeType.DOUBLE: Kind.NUMBER,
    AttributeType.DATETIME: Kind.DATETIME,
    AttributeType.BOOLEAN: Kind.BOOLEAN,
}
_STRING_MATCHES = ("contains", "startswith", "endswith")
_CASE_FUNCTIONS = ("tolower", "toupper")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_case(function: str, text: str) -> str:
    """tolower/toupper as SQL computes them under COLLATE "C": ASCII letters only."""
    return text.translate(_ASCII_LOWER if function == "tolower" else _ASCII_UPPER)


def parse_filter(text: str) -> ast.Bool:
    """Parse and check a `$filter` expression."""
    if not isinstance(text, str):
        raise ODataError(INVALID_FILTER, "$filter must be text")
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(INVALID_FILTER, f"$filter longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise ODataError(INVALID_FILTER, "$filter is empty")
    raw = _parse_raw(text)
    return _Binder().boolean(raw)


# --- raw nodes, built during parsing --------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    depth: int = field(default=1, kw_only=True)


@dataclass(frozen=True)
class _RawLiteral(_Raw):
    token: str  # terminal name
    text: str


@dataclass(frozen=True)
class _RawLambda(_Raw):
    op: str
    variable: str | None
    body: _Raw | None


@dataclass(frozen=True)
class _RawPath(_Raw):
    segments: tuple[str, ...]
    lambda_: _RawLambda | None


@dataclass(frozen=True)
class _RawCall(_Raw):
    name: str
    args: tuple[_Raw, ...]


@dataclass(frozen=True)
class _RawCompare(_Raw):
    op: str
    left: _Raw
    right: _Raw


@dataclass(frozen=True)
class _RawIn(_Raw):
    operand: _Raw
    items: tuple[_Raw, ...]


@dataclass(frozen=True)
class _RawAnd(_Raw):
    items: tuple[_Raw, ...]


@dataclass(frozen=True)
class _RawOr(_Raw):
    items: tuple[_Raw, ...]


@dataclass(frozen=True)
class _RawNot(_Raw):
    item: _Raw


def _depth(*children: _Raw | None) -> int:
    depth = 1 + max((c.depth for c in children if c is not None), default=0)
    if depth > MAX_DEPTH:
        raise ODataError(INVALID_FILTER, f"$filter nested deeper than {MAX_DEPTH} levels")
    return depth


class _Build(lark.Transformer):
    """Called by the LALR parser at each reduction, bottom-up, without recursion."""

    def or_expr(self, items: list[_Raw]) -> _Raw:
        return _RawOr(tuple(items), depth=_depth(*items))

    def and_expr(self, items: list[_Raw]) -> _Raw:
        return _RawAnd(tuple(items), depth=_depth(*items))

    def not_(self, items: list[_Raw]) -> _Raw:
        return _RawNot(items[0], depth=_depth(items[0]))

    def compare(self, items: list) -> _Raw:
        left, op, right = items
        return _RawCompare(str(op).lower(), left, right, depth=_depth(left, right))

    def in_(self, items: list[_Raw]) -> _Raw:
        return _RawIn(items[0], tuple(items[1:]), depth=_depth(*items))

    def call(self, items: list) -> _Raw:
        name, *args = items
        args = [a for a in args if a is not None]
        return _RawCall(str(name), tuple(args), depth=_depth(*args))

    def lambda_(self, items: list) -> _Raw:
        op, variable, body = items
        return _RawLambda(
            str(op).lower(), None if variable is None else str(variable), body,
            depth=_depth(body),
        )

    def path(self, items: list) -> _Raw:
        lam = items[-1] if isinstance(items[-1], _RawLambda) else None
        segments = tuple(str(s) for s in (items[:-1] if lam is not None else items))
        return _RawPath(segments, lam, depth=_depth(lam))

    def literal(self, items: list) -> _Raw:
        token = items[0]
        return _RawLiteral(token.type, str(token))


@cache
def _parser() -> lark.Lark:
    grammar = (resources.files("shared.odata") / "filter.lark").read_text(encoding="utf-8")
    return lark.Lark(
        grammar, parser="lalr", lexer="contextual", transformer=_Build(),
        maybe_placeholders=True, propagate_positions=False,
    )


def _parse_raw(text: str) -> _Raw:
    try:
        return _parser().parse(text)
    except ODataError:
        raise
    except UnexpectedCharacters as exc:
        where = text[exc.pos_in_stream:exc.pos_in_stream + 20]
        raise ODataError(
            INVALID_FILTER, f"syntax error at position {exc.pos_in_stream + 1}: "
            f"unexpected {where!r}") from None
    except UnexpectedEOF:
        raise ODataError(INVALID_FILTER, "syntax error: unexpected end of $filter") from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise ODataError(INVALID_FILTER, "syntax error: unexpected end of $filter") from None
        token = str(exc.token)[:40]
        raise ODataError(
            INVALID_FILTER,
            f"syntax error at position {exc.token.start_pos + 1}: unexpected {token!r}",
        ) from None
    except LarkError as exc:
        # Exceptions raised inside a callback arrive wrapped; unwrap ours.
        inner = getattr(exc, "orig_exc", None)
        if isinstance(inner, ODataError):
            raise inner from None
        raise ODataError(INVALID_FILTER, "syntax error in $filter") from None
    except RecursionError:
        raise ODataError(INVALID_FILTER, "$filter nested too deeply") from None


# --- literals --------------------------------------------------------------------------------

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


def _parse_guid(text: str) -> UUID:
    try:
        return UUID(text.strip())
    except ValueError:
        raise ODataError(INVALID_FILTER, f"not a valid Guid: {text[:40]!r}") from None


def _checked_string(text: str) -> str:
    if "\x00" in text:
        raise ODataError(INVALID_FILTER, "string literal contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ODataError(INVALID_FILTER, "string literal is not valid Unicode") from None
    return text


def _literal(raw: _RawLiteral) -> ast.Literal:
    token, text = raw.token, raw.text
    if token == "STRING":
        return ast.Literal(_checked_string(text[1:-1].replace("''", "'")), Kind.STRING)
    if token in ("INT", "DECIMAL") and len(text) > MAX_NUMBER_LENGTH:
        raise ODataError(INVALID_FILTER, f"number literal longer than {MAX_NUMBER_LENGTH} digits")
    if token == "INT":
        return ast.Literal(int(text), Kind.INT64)
    if token == "DECIMAL":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ODataError(INVALID_FILTER, f"not a valid number: {text!r}") from None
        if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
            raise ODataError(INVALID_FILTER, f"number out of range: {text!r}")
        return ast.Literal(number, Kind.NUMBER)
    if token == "DATETIME":
        return ast.Literal(parse_datetime(text), Kind.DATETIME)
    if token == "GUID":
        return ast.Literal(_parse_guid(text), Kind.GUID)
    if token in ("TRUE", "FALSE"):
        return ast.Literal(token == "TRUE", Kind.BOOLEAN)
    if token == "NULL":
        return ast.Literal(None, Kind.NULL)
    if token == "TYPED":
        prefix, _, rest = text.partition("'")
        inner = rest[:-1]
        if prefix.lower() == "guid":
            return ast.Literal(_parse_guid(inner), Kind.GUID)
        return ast.Literal(parse_datetime(inner), Kind.DATETIME)
    raise ODataError(INVALID_FILTER, f"unsupported literal {text[:40]!r}")


def _describe(node: ast.Value) -> str:
    if isinstance(node, ast.Property):
        return node.path
    if isinstance(node, ast.Call):
        return f"{node.function}({_describe(node.arg)})"
    if isinstance(node, ast.AttrName):
        return "the attribute Name"
    if isinstance(node, ast.AttrValue):
        return f"the {node.type.odata_type} Value"
    return f"the literal {_show(node)}"


def _show(lit: ast.Literal) -> str:
    if lit.kind is Kind.NULL:
        return "null"
    text = repr(lit.value) if lit.kind is Kind.STRING else str(lit.value)
    return text[:40]


def coerce(lit: ast.Literal, kind: Kind, against: str) -> ast.Literal:
    """The literal as a value of `kind`, or ODataError naming what it was compared with."""
    if lit.kind is kind:
        if kind is Kind.INT64 and not _INT64[0] <= lit.value <= _INT64[1]:  # type: ignore
            raise ODataError(INVALID_FILTER, f"{_show(lit)} is out of range for {against}")
        return lit
    if kind is Kind.NUMBER and lit.kind is Kind.INT64:
        return ast.Literal(Decimal(lit.value), Kind.NUMBER)  # type: ignore[arg-type]
    if kind is Kind.DATETIME and lit.kind is Kind.STRING:
        return ast.Literal(parse_datetime(lit.value), Kind.DATETIME)  # type: ignore[arg-type]
    if kind is Kind.GUID and lit.kind is Kind.STRING:
        return ast.Literal(_parse_guid(lit.value), Kind.GUID)  # type: ignore[arg-type]
    wanted = {Kind.INT64: "an integer", Kind.NUMBER: "a number"}.get(kind, f"a {kind.value}")
    raise ODataError(
        INVALID_FILTER, f"{against} needs {wanted}, got {lit.kind.value} {_show(lit)}")


def compare_python(op: str, left: object, right: object) -> bool:
    """Comparison of two non-null Python values, as SQL does it (strings by code point)."""
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right  # type: ignore[operator]
    if op == "ge":
        return left >= right  # type: ignore[operator]
    if op == "lt":
        return left < right  # type: ignore[operator]
    return left <= right  # type: ignore[operator]


# --- binding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    variable: str | None = None
    type: AttributeType | None = None


_NO_SCOPE = _Scope()
Operand = ast.Value | ast.Bool


class _Binder:
    def boolean(self, raw: _Raw, scope: _Scope = _NO_SCOPE) -> ast.Bool:
        node = self.operand(raw, scope)
        return self._as_bool(node)

    def _as_bool(self, node: Operand) -> ast.Bool:
        if isinstance(node, ast.Literal):
            if node.kind is Kind.BOOLEAN:
                return ast.Const(bool(node.value))
            raise ODataError(INVALID_FILTER, f"{_show(node)} is not a boolean expression")
        if isinstance(node, (ast.Property, ast.Call, ast.AttrName, ast.AttrValue)):
            if node.kind is Kind.BOOLEAN:
                return ast.BoolValue(node)
            raise ODataError(INVALID_FILTER, f"{_describe(node)} is not a boolean expression")
        return node

    def operand(self, raw: _Raw, scope: _Scope) -> Operand:
        if isinstance(raw, _RawLiteral):
            return _literal(raw)
        if isinstance(raw, _RawPath):
            return self._path(raw, scope)
        if isinstance(raw, _RawCall):
            return self._call(raw, scope)
        if isinstance(raw, _RawCompare):
            return self._compare(raw, scope)
        if isinstance(raw, _RawIn):
            return self._in(raw, scope)
        if isinstance(raw, _RawAnd):
            return conjunction([self.boolean(i, scope) for i in raw.items])
        if isinstance(raw, _RawOr):
            return disjunction([self.boolean(i, scope) for i in raw.items])
        if isinstance(raw, _RawNot):
            return negation(self.boolean(raw.item, scope))
        raise ODataError(INVALID_FILTER, "unsupported expression")  # pragma: no cover

    def value(self, raw: _Raw, scope: _Scope, what: str) -> ast.Value:
        node = self.operand(raw, scope)
        if isinstance(node, (ast.Property, ast.Literal, ast.Call, ast.AttrName, ast.AttrValue)):
            return node
        raise ODataError(INVALID_FILTER, f"{what} must be a value, not a condition")

    def _path(self, raw: _RawPath, scope: _Scope) -> Operand:
        segments = raw.segments
        if scope.variable is not None and segments[0] == scope.variable:
            if raw.lambda_ is not None:
                raise ODataError(INVALID_FILTER, "nested lambda expressions are not supported")
            return self._member(segments[1:], scope)
        if raw.lambda_ is not None:
            return self._lambda(segments, raw.lambda_, scope)
        path = "/".join(segments)
        info = PROPERTIES.get(path)
        if info is not None:
            return ast.Property(info.path, info.kind)
        if path == COLLECTION_NAME_PATH:
            return ast.Literal(COLLECTION_NAME, Kind.STRING)
        if segments[0] == "Attributes":
            raise ODataError(
                INVALID_FILTER, "Attributes can only be filtered with a lambda, e.g. "
                "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
                "att/OData.CSC.StringAttribute/Value eq 'AUX_CAL')")
        known = ", ".join([*PROPERTIES, COLLECTION_NAME_PATH])
        raise ODataError(INVALID_FILTER, f"unknown property {path[:80]!r}; known: {known}")

    def _member(self, rest: tuple[str, ...], scope: _Scope) -> ast.Value:
        assert scope.type is not None
        if rest == ("Name",):
            return ast.AttrName()
        if rest == ("Value",) or rest == (scope.type.odata_type, "Value"):
            return ast.AttrValue(scope.type, _ATTRIBUTE_KINDS[scope.type])
        if len(rest) == 2 and rest[1] == "Value" and rest[0] in _ATTRIBUTE_CASTS:
            raise ODataError(
                INVALID_FILTER, f"{scope.variable}/{rest[0]}/Value inside a lambda over "
                f"{scope.type.odata_type}")
        shown = "/".join((str(scope.variable), *rest))[:80]
        raise ODataError(
            INVALID_FILTER, f"unknown attribute member {shown!r}; use "
            f"{scope.variable}/Name or {scope.variable}/{scope.type.odata_type}/Value")

    def _lambda(self, segments: tuple[str, ...], lam: _RawLambda, scope: _Scope) -> ast.Bool:
        if scope.variable is not None:
            raise ODataError(INVALID_FILTER, "nested lambda expressions are not supported")
        if len(segments) != 2 or segments[0] != "Attributes" or segments[1] not in _ATTRIBUTE_CASTS:
            casts = ", ".join(f"Attributes/{c}/{lam.op}" for c in _ATTRIBUTE_CASTS)
            raise ODataError(
                INVALID_FILTER, f"{lam.op} is only supported over typed Attributes: {casts}")
        kind = _ATTRIBUTE_CASTS[segments[1]]
        if lam.body is None:
            if lam.op == "all":
                raise ODataError(INVALID_FILTER, "all() needs a lambda expression")
            return ast.Any(kind, None, None)
        inner = _Scope(lam.variable, kind)
        body = self.boolean(lam.body, inner)
        if lam.op == "any":
            return ast.Const(False) if body == ast.Const(False) else ast.Any(kind, body, lam.variable)
        return ast.Const(True) if body == ast.Const(True) else ast.All(kind, body, lam.variable)

    def _call(self, raw: _RawCall, scope: _Scope) -> Operand:
        name = raw.name.lower()
        if name in _STRING_MATCHES:
            if len(raw.args) != 2:
                raise ODataError(INVALID_FILTER, f"{name} takes 2 arguments")
            subject = self.value(raw.args[0], scope, f"the first argument of {name}")
            pattern = self.value(raw.args[1], scope, f"the second argument of {name}")
            if subject.kind is not Kind.STRING:
                raise ODataError(INVALID_FILTER, f"{name} needs a string, got {_describe(subject)}")
            if not isinstance(pattern, ast.Literal) or pattern.kind is not Kind.STRING:
                raise ODataError(INVALID_FILTER, f"the second argument of {name} must be a string literal")
            text = str(pattern.value)
            if isinstance(subject, ast.Literal):
                return ast.Const(match_python(name, str(subject.value), text))
            return ast.Match(name, subject, text)
        if name in _CASE_FUNCTIONS:
            if len(raw.args) != 1:
                raise ODataError(INVALID_FILTER, f"{name} takes 1 argument")
            arg = self.value(raw.args[0], scope, f"the argument of {name}")
            if arg.kind is not Kind.STRING:
                raise ODataError(INVALID_FILTER, f"{name} needs a string, got {_describe(arg)}")
            if isinstance(arg, ast.Literal):
                return ast.Literal(ascii_case(name, str(arg.value)), Kind.STRING)
            return ast.Call(name, arg)
        known = ", ".join((*_STRING_MATCHES, *_CASE_FUNCTIONS))
        raise ODataError(INVALID_FILTER, f"unknown function {raw.name[:40]!r}; known: {known}")

    def _compare(self, raw: _RawCompare, scope: _Scope) -> ast.Bool:
        op = raw.op
        left = self.operand(raw.left, scope)
        right = self.operand(raw.right, scope)
        if _is_condition(left) or _is_condition(right):
            return self._compare_condition(op, left, right)
        assert not _is_condition(left) and not _is_condition(right)
        if isinstance(left, ast.Literal) and not isinstance(right, ast.Literal):
            left, right, op = right, left, ast.FLIPPED[op]
        if not isinstance(right, ast.Literal):
            raise ODataError(
                INVALID_FILTER, f"cannot compare {_describe(left)} with {_describe(right)}: "
                "one side must be a literal")
        left_null = isinstance(left, ast.Literal) and left.kind is Kind.NULL
        if right.kind is Kind.NULL or left_null:
            if op not in ("eq", "ne"):
                raise ODataError(INVALID_FILTER, f"null can only be compared with eq or ne, not {op}")
            if isinstance(left, ast.Literal):
                both = left_null and right.kind is Kind.NULL
                return ast.Const(both == (op == "eq"))
            return ast.IsNull(left) if op == "eq" else ast.Not(ast.IsNull(left))
        if isinstance(left, ast.Literal):
            try:
                right = coerce(right, left.kind, f"the literal {_show(left)}")
            except ODataError:
                left = coerce(left, right.kind, f"the literal {_show(right)}")
            return ast.Const(compare_python(op, left.value, right.value))
        literal = coerce(right, left.kind, _describe(left))
        return ast.Compare(op, left, literal)

    def _compare_condition(self, op: str, left: Operand, right: Operand) -> ast.Bool:
        # `contains(Name,'x') eq true`: some clients spell conditions this way.
        condition, other = (left, right) if _is_condition(left) else (right, left)
        if (op not in ("eq", "ne") or not isinstance(other, ast.Literal)
                or other.kind is not Kind.BOOLEAN):
            raise ODataError(
                INVALID_FILTER, "a condition can only be compared with eq/ne true or false")
        if _is_condition(other):  # pragma: no cover - excluded above
            raise ODataError(INVALID_FILTER, "cannot compare two conditions")
        positive = bool(other.value) == (op == "eq")
        assert not isinstance(condition, (ast.Property, ast.Literal, ast.Call))
        return condition if positive else negation(condition)  # type: ignore[arg-type]

    def _in(self, raw: _RawIn, scope: _Scope) -> ast.Bool:
        operand = self.value(raw.operand, scope, "the left side of in")
        values: list[ast.Literal] = []
        for item in raw.items:
            node = self.operand(item, scope)
            if not isinstance(node, ast.Literal):
                raise ODataError(INVALID_FILTER, "the list of in must hold literals only")
            if node.kind is Kind.NULL:
                raise ODataError(INVALID_FILTER, "null is not allowed in the list of in")
            values.append(node)
        if isinstance(operand, ast.Literal):
            if operand.kind is Kind.NULL:
                raise ODataError(INVALID_FILTER, "null is not allowed on the left of in")
            found = False
            for v in values:
                v = coerce(v, operand.kind, f"the literal {_show(operand)}")
                found = found or compare_python("eq", operand.value, v.value)
            return ast.Const(found)
        coerced = tuple(coerce(v, operand.kind, _describe(operand)) for v in values)
        unique = tuple(dict.fromkeys(coerced))
        return ast.In(operand, unique)


def _is_condition(node: Operand) -> bool:
    return not isinstance(node, (ast.Property, ast.Literal, ast.Call, ast.AttrName, ast.AttrValue))


def match_python(function: str, subject: str, pattern: str) -> bool:
    if function == "contains":
        return pattern in subject
    if function == "startswith":
        return subject.startswith(pattern)
    return subject.endswith(pattern)


# --- boolean simplification, exact under three-valued logic ---------------------------------


def conjunction(items: list[ast.Bool]) -> ast.Bool:
    flat: list[ast.Bool] = []
    for item in items:
        for part in item.items if isinstance(item, ast.And) else (item,):
            if part == ast.Const(False):
                return ast.Const(False)  # FALSE AND NULL is FALSE
            if part != ast.Const(True):
                flat.append(part)
    if not flat:
        return ast.Const(True)
    return flat[0] if len(flat) == 1 else ast.And(tuple(flat))


def disjunction(items: list[ast.Bool]) -> ast.Bool:
    flat: list[ast.Bool] = []
    for item in items:
        for part in item.items if isinstance(item, ast.Or) else (item,):
            if part == ast.Const(True):
                return ast.Const(True)  # TRUE OR NULL is TRUE
            if part != ast.Const(False):
                flat.append(part)
    if not flat:
        return ast.Const(False)
    return flat[0] if len(flat) == 1 else ast.Or(tuple(flat))


def negation(item: ast.Bool) -> ast.Bool:
    if isinstance(item, ast.Const):
        return ast.Const(not item.value)
    if isinstance(item, ast.Not):
        return item.item
    return ast.Not(item)

