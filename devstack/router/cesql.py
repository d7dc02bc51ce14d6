"""CloudEvents SQL (CESQL v1) filter expressions: parse once per Trigger, evaluate per event.

Supported: string ('...' or "...", a quote escaped by doubling it or by a backslash),
integer and boolean literals; attribute identifiers; = != <> < <= > >=; + - * / % and unary
-; AND OR XOR NOT; parentheses; [NOT] LIKE with % _ and backslash escapes; EXISTS attr;
[NOT] IN (...); functions LOWER UPPER LENGTH CONCAT CONCAT_WS TRIM LEFT RIGHT SUBSTRING
ABS INT BOOL STRING.

Semantics follow the spec and its conformance suite (tests/devstack/router/cesql_tck/, run by the
tests):
- every attribute is a String; operators cast their operands (`sequence = 5` compares
  integers; for `=`, `!=`, `<>` and IN the right-hand/left-hand type decides the cast);
- integers are 32-bit, arithmetic wraps, division truncates towards zero;
- AND and OR short-circuit, so `type = 'x' OR missing = 'y'` is true for type x;
- evaluation is total: an error (a missing attribute, a failed cast, a division by zero, a
  function given bad arguments) is collected with its kind, and the expression still has a
  value. An operator whose operand failed to evaluate is the zero value of its type (false,
  0, ''), so `missing <= 2` is false; a failed cast inside an operator gives the zero value
  of the type cast to, and the operator goes on (`NOT 10` is true, with a cast error); a
  function in error returns what the spec says (`ABS(-2147483648)` is 2147483647).
- as a filter, an expression matches only when it evaluates to true without any error;
- operator precedence and grouping are those of the reference grammar (see cesql.lark).

Syntax errors, unknown functions and wrong arities are reported when parsing, so a bad
Trigger is rejected when the manifests load rather than silently never matching.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from devstack.router.cesql_values import (
    FUNCTIONS,
    INT_MAX,
    INT_MIN,
    CesqlError,
    CesqlEvaluationError,
    CesqlMissingFunctionError,
    CesqlSyntaxError,
    Errors,
    Value,
    cast,
    equal,
    like_match,
    like_pattern,
    to_bool,
    to_int,
    to_str,
    wrap,
)

__all__ = ["CesqlError", "CesqlEvaluationError", "CesqlMissingFunctionError",
           "CesqlSyntaxError", "Expression", "Value", "parse"]

Attributes = Mapping[str, str]
_Node = Callable[[Attributes, Errors], Value]

_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")
# Deep nesting would exhaust Python's stack when evaluating the compiled closures.
_MAX_DEPTH = 100


@dataclass(frozen=True)
class Expression:
    source: str
    _evaluate: _Node

    def evaluate_all(self, attributes: Attributes) -> tuple[Value, list[CesqlEvaluationError]]:
        """The expression's value and the errors met computing it, in order."""
        errors: Errors = []
        value = self._evaluate(attributes, errors)
        return value, errors

    def evaluate(self, attributes: Attributes) -> Value:
        """The expression's value; raises the first CesqlEvaluationError met."""
        value, errors = self.evaluate_all(attributes)
        if errors:
            raise errors[0]
        return value

    def matches(self, attributes: Attributes) -> bool:
        """Filter semantics: true only for a boolean true reached without any error."""
        value, errors = self.evaluate_all(attributes)
        return value is True and not errors


def parse(source: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise CesqlSyntaxError("empty expression")
    try:
        tree = _parser().parse(source)
    except LarkError as error:
        raise CesqlSyntaxError(_describe(error)) from None
    return Expression(source, _compile(tree, 0))


@cache
def _parser() -> Lark:
    grammar = (resources.files("devstack.router") / "cesql.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", maybe_placeholders=True)


def _describe(error: LarkError) -> str:
    column = getattr(error, "column", None)
    where = f" at column {column}" if isinstance(column, int) and column > 0 else ""
    token = getattr(error, "token", None)
    if token is not None and getattr(token, "type", "") == "$END":
        return f"unexpected end of expression{where}"
    if token is not None:
        return f"unexpected {str(token)!r}{where}"
    char = getattr(error, "char", None)
    if char is not None:
        return f"unexpected character {char!r}{where}"
    return f"invalid expression{where}"


# -- compilation: tree -> closures ---------------------------------------------------------


def _compile(node: Tree | Token, depth: int) -> _Node:
    if depth > _MAX_DEPTH:
        raise CesqlSyntaxError(f"expression nested deeper than {_MAX_DEPTH} levels")
    if isinstance(node, Token):  # only reached through rules inlined by '?'
        raise CesqlSyntaxError(f"unexpected token {str(node)!r}")
    compile_rule = _RULES.get(node.data)
    if compile_rule is None:
        raise CesqlSyntaxError(f"unsupported construct {node.data}")
    return compile_rule(node, depth + 1)


def _children(node: Tree, depth: int) -> list[_Node]:
    return [_compile(child, depth) for child in node.children if isinstance(child, Tree)]


def _operands(nodes: list[_Node], attributes: Attributes, errors: Errors) -> list[Value] | None:
    """The operands' values, or None when one of them erred (the operator is then its zero
    value: a subexpression over a missing attribute is false)."""
    before = len(errors)
    values = [node(attributes, errors) for node in nodes]
    return None if len(errors) > before else values


def _integer(node: Tree, depth: int) -> _Node:
    value = int(node.children[0])
    if value > INT_MAX:
        raise CesqlSyntaxError(f"integer literal {value} is not a 32-bit integer")
    return lambda _attributes, _errors: value


def _string(node: Tree, depth: int) -> _Node:
    value = _unquote(str(node.children[0]))
    return lambda _attributes, _errors: value


def _unquote(token: str) -> str:
    quote, body = token[0], token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            following = body[i + 1]
            # Only the delimiting quote is unescaped: other backslashes stay, so LIKE
            # patterns keep their own escapes (\% \_).
            out.append(quote if following == quote else char + following)
            i += 2
        elif char == quote:  # a doubled quote; the lexer guarantees its pair
            out.append(quote)
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _attribute(node: Tree, depth: int) -> _Node:
    name = _attribute_name(node.children[0])

    def read(attributes: Attributes, errors: Errors) -> Value:
        value = attributes.get(name)
        if value is None:
            errors.append(CesqlEvaluationError("missingAttribute", f"no attribute {name!r}"))
            return False
        return value if isinstance(value, (str, int)) else str(value)

    return read


def _attribute_name(token: Token) -> str:
    name = str(token).lower()
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise CesqlSyntaxError(
            f"{str(token)!r} is not an attribute name (1-20 lower-case letters or digits)"
        )
    return name


def _exists(node: Tree, depth: int) -> _Node:
    name = _attribute_name(node.children[1])
    return lambda attributes, _errors: attributes.get(name) is not None


def _not(node: Tree, depth: int) -> _Node:
    operands = _children(node, depth)

    def run(attributes: Attributes, errors: Errors) -> Value:
        values = _operands(operands, attributes, errors)
        return False if values is None else not to_bool(values[0], errors)

    return run


def _neg(node: Tree, depth: int) -> _Node:
    child = node.children[0]
    if isinstance(child, Tree) and child.data == "integer" and int(child.children[0]) == 2**31:
        return lambda _attributes, _errors: INT_MIN  # the one literal only writable negated
    operands = _children(node, depth)

    def run(attributes: Attributes, errors: Errors) -> Value:
        values = _operands(operands, attributes, errors)
        return 0 if values is None else wrap(-to_int(values[0], errors))

    return run


def _logic(kind: str) -> Callable[[Tree, int], _Node]:
    def build(node: Tree, depth: int) -> _Node:
        left, right = _children(node, depth)

        def run(attributes: Attributes, errors: Errors) -> Value:
            first = _operands([left], attributes, errors)
            if first is None:
                return False
            x = to_bool(first[0], errors)
            # Short circuit: the right operand is not evaluated, so it cannot err.
            if (kind == "and" and not x) or (kind == "or" and x):
                return x
            second = _operands([right], attributes, errors)
            if second is None:
                return False
            y = to_bool(second[0], errors)
            return x != y if kind == "xor" else y

        return run

    return build


_ORDERINGS: dict[str, Callable[[int, int], bool]] = {
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


def _compare(node: Tree, depth: int) -> _Node:
    left_node, op_token, right_node = node.children
    operands = [_compile(left_node, depth), _compile(right_node, depth)]
    op = str(op_token)

    def run(attributes: Attributes, errors: Errors) -> Value:
        values = _operands(operands, attributes, errors)
        if values is None:
            return False
        x, y = values
        if op == "=":
            return equal(x, y, errors)
        if op in ("!=", "<>"):
            return not equal(x, y, errors)
        return _ORDERINGS[op](to_int(x, errors), to_int(y, errors))

    return run


def _arith(node: Tree, depth: int) -> _Node:
    left_node, op_token, right_node = node.children
    operands = [_compile(left_node, depth), _compile(right_node, depth)]
    op = str(op_token)

    def run(attributes: Attributes, errors: Errors) -> Value:
        values = _operands(operands, attributes, errors)
        if values is None:
            return 0
        x, y = to_int(values[0], errors), to_int(values[1], errors)
        if op == "+":
            return wrap(x + y)
        if op == "-":
            return wrap(x - y)
        if op == "*":
            return wrap(x * y)
        if y == 0:
            errors.append(CesqlEvaluationError("math", "division by zero"))
            return 0
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        return wrap(quotient if op == "/" else x - y * quotient)

    return run


def _like(negated: bool) -> Callable[[Tree, int], _Node]:
    def build(node: Tree, depth: int) -> _Node:
        subject = _compile(node.children[0], depth)
        pattern_tree = next(c for c in node.children[1:] if isinstance(c, Tree))
        pattern = like_pattern(_unquote(str(pattern_tree.children[0])))

        def run(attributes: Attributes, errors: Errors) -> Value:
            values = _operands([subject], attributes, errors)
            if values is None:
                return False
            return like_match(to_str(values[0]), pattern) != negated

        return run

    return build


def _in(negated: bool) -> Callable[[Tree, int], _Node]:
    def build(node: Tree, depth: int) -> _Node:
        operands = _children(node, depth)

        def run(attributes: Attributes, errors: Errors) -> Value:
            values = _operands(operands, attributes, errors)
            if values is None:
                return False
            value, *members = values
            target = type(value)
            found = any(cast(member, target, errors) == value for member in members)
            return found != negated

        return run

    return build


def _call(node: Tree, depth: int) -> _Node:
    name = str(node.children[0]).upper()
    arguments = [_compile(child, depth) for child in node.children[1:] if child is not None]
    entry = FUNCTIONS.get(name)
    if entry is None:
        raise CesqlMissingFunctionError(f"unknown function {name}")
    least, most, zero, implementation = entry
    if len(arguments) < least or (most is not None and len(arguments) > most):
        raise CesqlMissingFunctionError(f"function {name} does not take {len(arguments)} arguments")

    def run(attributes: Attributes, errors: Errors) -> Value:
        values = _operands(arguments, attributes, errors)
        return zero if values is None else implementation(values, errors)

    return run


def _true(node: Tree, depth: int) -> _Node:
    return lambda _attributes, _errors: True


def _false(node: Tree, depth: int) -> _Node:
    return lambda _attributes, _errors: False


_RULES: dict[str, Callable[[Tree, int], _Node]] = {
    "integer": _integer,
    "string": _string,
    "true": _true,
    "false": _false,
    "attribute": _attribute,
    "exists": _exists,
    "not_": _not,
    "neg": _neg,
    "and_": _logic("and"),
    "or_": _logic("or"),
    "xor_": _logic("xor"),
    "compare": _compare,
    "arith": _arith,
    "like": _like(False),
    "not_like": _like(True),
    "in_": _in(False),
    "not_in": _in(True),
    "call": _call,
}
