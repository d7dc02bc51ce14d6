"""`$filter` text -> checked AST (`shared.odata.ast`).

Two steps: the LALR grammar in `filter.lark` builds raw nodes while it parses (no parse
tree, no recursion, so deep nesting cannot overflow the stack), then the binder resolves
names, checks types and turns every literal into its final Python value. Anything a client
can get wrong ends as ODataError.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources

import lark
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from shared.core.recently_used import RecentlyUsed
from shared.odata import ast, shapes
from shared.odata.binder import bind
from shared.odata.errors import INVALID_FILTER, ODataError
from shared.odata.raw import (
    MAX_DEPTH,
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
    depth_of,
)

MAX_FILTER_LENGTH = 32_768
# Clients poll with the same filter text again and again (the field queries of ODATA.md
# are each one text a client repeats): the checked AST of the last ones is kept (it is
# immutable), which spares the parse (0.1-0.7 ms) of a repeated request. Long texts are
# not kept, so the cache stays small (at most _REMEMBERED x _REMEMBERED_LENGTH characters).
# Others poll with one text and a fresh date each time: the AST of the last shapes is kept
# too and filled with the request's literals (shapes.py).
_REMEMBERED = 256
_REMEMBERED_LENGTH = 2048
_SHAPES: RecentlyUsed[shapes.Key, shapes.AstShape | bool] = RecentlyUsed(_REMEMBERED)
__all__ = ["MAX_DEPTH", "MAX_FILTER_LENGTH", "parse_filter", "read_filter"]


def parse_filter(text: str) -> ast.Bool:
    """Parse and check a `$filter` expression."""
    return read_filter(text)[0]


def read_filter(text: str) -> tuple[ast.Bool, shapes.Slots | None]:
    """parse_filter, and the filter's shape with its literals when it has one."""
    if not isinstance(text, str):
        raise ODataError(INVALID_FILTER, "$filter must be text")
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(INVALID_FILTER, f"$filter longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise ODataError(INVALID_FILTER, "$filter is empty")
    if len(text) <= _REMEMBERED_LENGTH:
        return _remembered(text)  # an ODataError is raised anew each time, never kept
    return bind(_parse_raw(text)), None


@lru_cache(maxsize=_REMEMBERED)
def _remembered(text: str) -> tuple[ast.Bool, shapes.Slots | None]:
    scanned = shapes.scan(text, _scanner())
    if not scanned.starts:
        return bind(_parse_raw(text)), None
    known = _SHAPES.get(scanned.key)
    slots = _slots(known, scanned)
    if slots is not None:
        return slots.shape.fill(slots.values), slots
    raw = _parse_raw(text)
    node = bind(raw)  # a literal the shape refused raises here, as without shapes
    if known is None:
        known = shapes.make_shape(scanned, raw, node) or False
        _SHAPES.put(scanned.key, known)
        slots = _slots(known, scanned)
    return node, slots


def _slots(known: shapes.AstShape | bool | None, scanned: shapes.Scanned
           ) -> shapes.Slots | None:
    """The text's literals in the slots of its known shape (None: no shape, or a literal
    that does not read as the shape's)."""
    if not isinstance(known, shapes.AstShape):
        return None
    values = known.values(scanned)
    return None if values is None else shapes.Slots(known, values)


class _Build(lark.Transformer):
    """Called by the LALR parser at each reduction, bottom-up, without recursion."""

    def or_expr(self, items: list[Raw]) -> Raw:
        return RawOr(tuple(items), depth=depth_of(*items))

    def and_expr(self, items: list[Raw]) -> Raw:
        return RawAnd(tuple(items), depth=depth_of(*items))

    def not_(self, items: list[Raw]) -> Raw:
        return RawNot(items[0], depth=depth_of(items[0]))

    def compare(self, items: list) -> Raw:
        left, op, right = items
        return RawCompare(str(op).lower(), left, right, depth=depth_of(left, right))

    def in_(self, items: list[Raw]) -> Raw:
        return RawIn(items[0], tuple(items[1:]), depth=depth_of(*items))

    def call(self, items: list) -> Raw:
        name, *args = items
        args = [a for a in args if a is not None]
        return RawCall(str(name), tuple(args), depth=depth_of(*args))

    def lambda_(self, items: list) -> Raw:
        op, variable, body = items
        return RawLambda(
            str(op).lower(), None if variable is None else str(variable), body,
            depth=depth_of(body),
        )

    def path(self, items: list) -> Raw:
        lam = items[-1] if isinstance(items[-1], RawLambda) else None
        segments = tuple(str(s) for s in (items[:-1] if lam is not None else items))
        return RawPath(segments, lam, depth=depth_of(lam))

    def literal(self, items: list) -> Raw:
        token = items[0]
        return RawLiteral(token.type, str(token), start=token.start_pos)


@cache
def _parser() -> lark.Lark:
    grammar = (resources.files("shared.odata") / "filter.lark").read_text(encoding="utf-8")
    return lark.Lark(
        grammar, parser="lalr", lexer="contextual", transformer=_Build(),
        maybe_placeholders=True, propagate_positions=False,
    )


@cache
def _scanner() -> re.Pattern[str]:
    return shapes.scanner({t.name: t.pattern.to_regexp() for t in _parser().terminals})


def _parse_raw(text: str) -> Raw:
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
