"""Filter shapes: a `$filter` text with its date, number and Guid literals taken out as
slots, so that one text's checked AST and SQL serve every text of its shape.

Pollers send one shape with fresh literals each time (`PublicationDate gt <the last one
seen>`, the calibration in force at T): caching by text never hits, and the parse (0.3 ms)
and the SQL build (0.2 ms) were paid by every request. The parser keeps the AST of each
shape and fills it with a request's literals; products_query keeps its statements with the
parameters a slot feeds (`param_template`).

Strings are never slots: their values decide the SQL (attribute names, the product types
a name implies, GIN containment), whereas a date, number or Guid compared with a property
only ever ends as a parameter. A shape is only kept when that holds for the text it is
made from (`make_shape`): each slot is the literal of one comparison of the checked AST,
not folded with another literal, not in an `in` list (whose duplicates are dropped). A
request's literals are still read and checked by type one by one (`AstShape.values`,
the binder's own from_token and coerce); a literal that fails, or reads as another kind,
sends the request the uncached way, which raises the error it always raised.

The slots are found by one regular expression built from the grammar's own terminals,
tried in the lexer's order (priority first), with strings and names matched whole so that
nothing inside them is taken for a slot. Two texts of one key differ only inside slots
the same terminal matches, so the LALR parser sees the same token types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.core.s1time import format_canonical
from shared.odata import ast
from shared.odata.errors import ODataError
from shared.odata.literals import coerce, from_token
from shared.odata.raw import RawLiteral

# Terminals of filter.lark that are slots, in the lexer's order (priority, then width).
SLOT_TOKENS = ("TYPED", "DATETIME", "GUID", "DECIMAL", "INT")
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"  # IDENT, QUALIFIED and keywords, at least as greedy

Key = tuple[tuple[str, ...], tuple[str, ...]]  # text between the slots, slot terminals
Values = tuple[ast.LiteralValue, ...]


def scanner(patterns: Mapping[str, str]) -> re.Pattern[str]:
    """`patterns`: regular expression of each terminal of filter.lark by name."""
    slots = "|".join(f"(?P<{name}>{patterns[name]})" for name in SLOT_TOKENS)
    return re.compile(f"{slots}|{patterns['STRING']}|{_NAME}")


@dataclass(frozen=True)
class Scanned:
    key: Key
    texts: tuple[str, ...]  # each slot's text
    starts: tuple[int, ...]  # and where it starts


def scan(text: str, pattern: re.Pattern[str]) -> Scanned:
    pieces: list[str] = []
    tokens: list[str] = []
    texts: list[str] = []
    starts: list[int] = []
    last = 0
    for match in pattern.finditer(text):
        token = match.lastgroup
        if token is None:
            continue  # a string or a name
        start = match.start()
        pieces.append(text[last:start])
        tokens.append(token)
        texts.append(match.group())
        starts.append(start)
        last = match.end()
    pieces.append(text[last:])
    return Scanned((tuple(pieces), tuple(tokens)), tuple(texts), tuple(starts))


@dataclass(frozen=True, eq=False)
class AstShape:
    key: Key
    node: ast.Bool  # the checked AST of the text the shape was made from
    starts: tuple[int, ...]  # where that text has its slots (their Literal.start)
    sources: tuple[ast.Kind, ...]  # the kind each slot's token reads as
    kinds: tuple[ast.Kind, ...]  # the kind the binder coerced it to

    def values(self, scanned: Scanned) -> Values | None:
        """The slots of a text of this shape, read and checked as the binder does; None
        when one fails or reads as another kind (the caller then parses the text)."""
        out: list[ast.LiteralValue] = []
        for token, text, source, kind in zip(scanned.key[1], scanned.texts, self.sources,
                                             self.kinds, strict=True):
            try:
                literal = from_token(token, text)
                if literal.kind is not source:
                    return None
                out.append(coerce(literal, kind, "").value)
            except ODataError:
                return None
        return tuple(out)

    def fill(self, values: Values) -> ast.Bool:
        return _fill(self.node, dict(zip(self.starts, values, strict=True)))


@dataclass(frozen=True)
class Slots:
    """A filter's shape and its literals: what products_query needs to re-use SQL."""

    shape: AstShape
    values: Values


def _fill(node: ast.Bool, values: dict[int | None, ast.LiteralValue]) -> ast.Bool:
    if isinstance(node, ast.Compare):
        literal = node.literal
        if literal.start not in values:
            return node
        return ast.Compare(node.op, node.operand,
                           ast.Literal(values[literal.start], literal.kind, literal.start))
    if isinstance(node, ast.And):
        return ast.And(tuple(_fill(i, values) for i in node.items))
    if isinstance(node, ast.Or):
        return ast.Or(tuple(_fill(i, values) for i in node.items))
    if isinstance(node, ast.Not):
        return ast.Not(_fill(node.item, values))
    if isinstance(node, ast.Any) and node.body is not None:
        return ast.Any(node.type, _fill(node.body, values), node.variable)
    if isinstance(node, ast.All):
        return ast.All(node.type, _fill(node.body, values), node.variable)
    return node  # no comparison below: make_shape refuses a slot anywhere else


def _nodes(node: object) -> Iterator[object]:
    """Every dataclass node of a raw or checked tree (depth bounded by raw.MAX_DEPTH)."""
    yield node
    for f in fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        for child in value if isinstance(value, tuple) else (value,):
            if is_dataclass(child):
                yield from _nodes(child)


def make_shape(scanned: Scanned, raw: object, node: ast.Bool) -> AstShape | None:
    """The shape of a parsed text, or None when its slots cannot be re-used (see above)."""
    tokens = scanned.key[1]
    lexed = sorted((n.start, n.token) for n in _nodes(raw)
                   if isinstance(n, RawLiteral) and n.token in SLOT_TOKENS)
    if lexed != list(zip(scanned.starts, tokens, strict=True)):
        return None  # the scan and the parser's lexer disagree: never seen, but be sure
    wanted = set(scanned.starts)
    nodes = list(_nodes(node))
    compared = {n.literal.start: n.literal for n in nodes
                if isinstance(n, ast.Compare) and n.literal.start in wanted}
    anywhere = [n.start for n in nodes if isinstance(n, ast.Literal) and n.start in wanted]
    if len(compared) != len(wanted) or sorted(anywhere) != sorted(wanted):
        return None
    sources = []
    for token, text in zip(tokens, scanned.texts, strict=True):
        sources.append(from_token(token, text).kind)
    kinds = tuple(compared[s].kind for s in scanned.starts)
    shape = AstShape(scanned.key, node, scanned.starts, tuple(sources), kinds)
    values = tuple(compared[s].value for s in scanned.starts)
    if shape.fill(values) != node:
        return None
    return shape


# -- literals for checking a template, and parameters as functions of the slots


def perturbed(values: Values, k: int) -> Values | None:
    """Other values of the same kinds, each slot moved by a different amount."""
    out: list[ast.LiteralValue] = []
    for i, value in enumerate(values):
        step = k * (i + 1)
        if isinstance(value, datetime):
            delta = timedelta(days=step, microseconds=step)
            out.append(value + delta if value.year < 5000 else value - delta)
        elif isinstance(value, bool):
            return None
        elif isinstance(value, int):
            out.append(value - step if value > 0 else value + step)
        elif isinstance(value, Decimal):
            out.append(value + step)
        elif isinstance(value, UUID):
            out.append(UUID(int=value.int ^ step))
        else:
            return None
        if out[-1] == value:
            return None  # 1e500 + 1 is 1e500 at 28 digits: the slot would look constant
    return tuple(out)


Param = Callable[[Values], object]


def same(a: object, b: object) -> bool:
    """Equal as parameters: same type and value (psycopg's Jsonb compares by identity)."""
    if isinstance(a, Jsonb) and isinstance(b, Jsonb):
        return same(a.obj, b.obj)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def _candidates(param: object, values: Values) -> Iterator[Param]:
    """Ways sql.py makes a parameter from a literal, that give `param` from `values`."""
    for j, value in enumerate(values):
        if same(value, param):
            yield lambda vs, j=j: vs[j]
        if isinstance(value, datetime) and same(format_canonical(value), param):
            yield lambda vs, j=j: format_canonical(vs[j])  # type: ignore[arg-type]
    if isinstance(param, Jsonb):
        for inner in _candidates(param.obj, values):
            yield lambda vs, inner=inner: Jsonb(inner(vs))
    if isinstance(param, dict) and len(param) == 1:
        [(name, item)] = param.items()
        for inner in _candidates(item, values):
            yield lambda vs, name=name, inner=inner: {name: inner(vs)}


def param_template(seen: list[tuple[tuple[object, ...], Values]]) -> tuple[Param, ...] | None:
    """The parameters of one statement as functions of the slots, from the statement
    built with several sets of values (`seen`: its parameters, the values); None unless
    each parameter is a constant or exactly one known function of one slot."""
    (first, values), *others = seen
    if any(len(params) != len(first) for params, _ in others):
        return None
    out: list[Param] = []
    for i, param in enumerate(first):
        if all(same(param, params[i]) for params, _ in others):
            out.append(lambda _, param=param: param)
            continue
        found = [f for f in _candidates(param, values)
                 if all(same(f(vs), params[i]) for params, vs in seen)]
        if len(found) != 1:
            return None
        out.append(found[0])
    return tuple(out)
