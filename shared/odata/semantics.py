"""What operators mean on Python values, and boolean simplification that is exact under
SQL's three-valued logic. Shared by the binder (constant folding), `sql` (the lambda
shortcut folds `att/Name`) and `evaluate`, so all three agree."""

from __future__ import annotations

from shared.odata import ast

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_case(function: str, text: str) -> str:
    """tolower/toupper as SQL computes them under COLLATE "C": ASCII letters only."""
    return text.translate(_ASCII_LOWER if function == "tolower" else _ASCII_UPPER)


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


def match_python(function: str, subject: str, pattern: str) -> bool:
    if function == "contains":
        return pattern in subject
    if function == "startswith":
        return subject.startswith(pattern)
    return subject.endswith(pattern)


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

