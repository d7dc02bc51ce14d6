"""Raw nodes -> checked AST: property and function names resolved, lambda variables
scoped, types checked, literals coerced, constants folded. Recursion is bounded by
raw.MAX_DEPTH."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.attributes import AttributeType
from shared.odata import ast
from shared.odata.ast import Kind
from shared.odata.errors import INVALID_FILTER, ODataError
from shared.odata.literals import coerce, describe, from_token, show
from shared.odata.properties import COLLECTION_NAME, COLLECTION_NAME_PATH, PROPERTIES
from shared.odata.raw import (
    Raw,
    RawAnd,
    RawCall,
    RawCompare,
    RawIn,
    RawLambda,
    RawLiteral,
    RawNot,
    RawOr,
    RawPath,
)
from shared.odata.semantics import (
    ascii_case,
    compare_python,
    conjunction,
    disjunction,
    match_python,
    negation,
)

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


def bind(raw: Raw) -> ast.Bool:
    return _Binder().boolean(raw)


@dataclass(frozen=True)
class _Scope:
    variable: str | None = None
    type: AttributeType | None = None


_NO_SCOPE = _Scope()
Operand = ast.Value | ast.Bool


class _Binder:
    def boolean(self, raw: Raw, scope: _Scope = _NO_SCOPE) -> ast.Bool:
        node = self.operand(raw, scope)
        return self._as_bool(node)

    def _as_bool(self, node: Operand) -> ast.Bool:
        if isinstance(node, ast.Literal):
            if node.kind is Kind.BOOLEAN:
                return ast.Const(bool(node.value))
            raise ODataError(INVALID_FILTER, f"{show(node)} is not a boolean expression")
        if isinstance(node, (ast.Property, ast.Call, ast.AttrName, ast.AttrValue)):
            if node.kind is Kind.BOOLEAN:
                return ast.BoolValue(node)
            raise ODataError(INVALID_FILTER, f"{describe(node)} is not a boolean expression")
        return node

    def operand(self, raw: Raw, scope: _Scope) -> Operand:
        if isinstance(raw, RawLiteral):
            return from_token(raw.token, raw.text, raw.start)
        if isinstance(raw, RawPath):
            return self._path(raw, scope)
        if isinstance(raw, RawCall):
            return self._call(raw, scope)
        if isinstance(raw, RawCompare):
            return self._compare(raw, scope)
        if isinstance(raw, RawIn):
            return self._in(raw, scope)
        if isinstance(raw, RawAnd):
            return conjunction([self.boolean(i, scope) for i in raw.items])
        if isinstance(raw, RawOr):
            return disjunction([self.boolean(i, scope) for i in raw.items])
        if isinstance(raw, RawNot):
            return negation(self.boolean(raw.item, scope))
        raise ODataError(INVALID_FILTER, "unsupported expression")  # pragma: no cover

    def value(self, raw: Raw, scope: _Scope, what: str) -> ast.Value:
        node = self.operand(raw, scope)
        if isinstance(node, (ast.Property, ast.Literal, ast.Call, ast.AttrName, ast.AttrValue)):
            return node
        raise ODataError(INVALID_FILTER, f"{what} must be a value, not a condition")

    def _path(self, raw: RawPath, scope: _Scope) -> Operand:
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

    def _lambda(self, segments: tuple[str, ...], lam: RawLambda, scope: _Scope) -> ast.Bool:
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

    def _call(self, raw: RawCall, scope: _Scope) -> Operand:
        name = raw.name.lower()
        if name in _STRING_MATCHES:
            if len(raw.args) != 2:
                raise ODataError(INVALID_FILTER, f"{name} takes 2 arguments")
            subject = self.value(raw.args[0], scope, f"the first argument of {name}")
            pattern = self.value(raw.args[1], scope, f"the second argument of {name}")
            if subject.kind is not Kind.STRING:
                raise ODataError(INVALID_FILTER, f"{name} needs a string, got {describe(subject)}")
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
                raise ODataError(INVALID_FILTER, f"{name} needs a string, got {describe(arg)}")
            if isinstance(arg, ast.Literal):
                return ast.Literal(ascii_case(name, str(arg.value)), Kind.STRING)
            return ast.Call(name, arg)
        known = ", ".join((*_STRING_MATCHES, *_CASE_FUNCTIONS))
        raise ODataError(INVALID_FILTER, f"unknown function {raw.name[:40]!r}; known: {known}")

    def _compare(self, raw: RawCompare, scope: _Scope) -> ast.Bool:
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
                INVALID_FILTER, f"cannot compare {describe(left)} with {describe(right)}: "
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
                right = coerce(right, left.kind, f"the literal {show(left)}")
            except ODataError:
                left = coerce(left, right.kind, f"the literal {show(right)}")
            return ast.Const(compare_python(op, left.value, right.value))
        literal = coerce(right, left.kind, describe(left))
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

    def _in(self, raw: RawIn, scope: _Scope) -> ast.Bool:
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
                v = coerce(v, operand.kind, f"the literal {show(operand)}")
                found = found or compare_python("eq", operand.value, v.value)
            return ast.Const(found)
        coerced = tuple(coerce(v, operand.kind, describe(operand)) for v in values)
        unique = tuple(dict.fromkeys(coerced))
        return ast.In(operand, unique)


def _is_condition(node: Operand) -> bool:
    return not isinstance(node, (ast.Property, ast.Literal, ast.Call, ast.AttrName, ast.AttrValue))
