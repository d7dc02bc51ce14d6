"""CloudEvents SQL values: the types and casts, equality, LIKE patterns and the built-in
functions (what an expression computes with, apart from how cesql.py parses it)."""

from __future__ import annotations

import re
from collections.abc import Callable

Value = str | int | bool
Errors = list["CesqlEvaluationError"]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_INT_TEXT = re.compile(r"[+-]?[0-9]+")


class CesqlError(Exception):
    """Anything wrong with a CESQL expression; the only exception these modules raise."""

    kind = "generic"


class CesqlSyntaxError(CesqlError):
    kind = "parse"


class CesqlMissingFunctionError(CesqlSyntaxError):
    """No function of that name takes that many arguments."""

    kind = "missingFunction"


class CesqlEvaluationError(CesqlError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind  # missingAttribute | cast | math | functionEvaluation


# -- types and casts: a failed cast is an error and the zero value of the target type --------


def wrap(value: int) -> int:
    return (value - INT_MIN) % 2**32 + INT_MIN


def to_int(value: Value, errors: Errors) -> int:
    if type(value) is bool:
        return int(value)
    if type(value) is int:
        return value
    text = str(value)
    if _INT_TEXT.fullmatch(text):
        number = int(text)
        if INT_MIN <= number <= INT_MAX:
            return number
    errors.append(CesqlEvaluationError("cast", f"{text[:40]!r} is not a 32-bit integer"))
    return 0


def to_bool(value: Value, errors: Errors, *, explicit: bool = False) -> bool:
    if type(value) is bool:
        return value
    if type(value) is int:
        if explicit:
            return value != 0
        errors.append(CesqlEvaluationError("cast", f"integer {value} used as a boolean"))
        return False
    text = str(value).lower()
    if text == "true":
        return True
    if text == "false":
        return False
    errors.append(CesqlEvaluationError("cast", f"{str(value)[:40]!r} is not a boolean"))
    return False


def to_str(value: Value) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def cast(value: Value, target: type, errors: Errors) -> Value:
    if target is bool:
        return to_bool(value, errors)
    if target is int:
        return to_int(value, errors)
    return to_str(value)


def equal(left: Value, right: Value, errors: Errors) -> bool:
    # `=` is ambiguous (String, Integer, Boolean): the right operand's type decides.
    if type(left) is type(right):
        return left == right
    return cast(left, type(right), errors) == right


# -- LIKE ----------------------------------------------------------------------------------

_ANY = object()  # %
_ONE = object()  # _


def like_pattern(pattern: str) -> list[object]:
    tokens: list[object] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            tokens.append(pattern[i + 1])
            i += 2
            continue
        tokens.append(_ANY if char == "%" else _ONE if char == "_" else char)
        i += 1
    return tokens


def like_match(text: str, pattern: list[object]) -> bool:
    # Wildcard matching with backtracking to the last %: O(len(text) * len(pattern)) at
    # worst, where a regex could take exponential time on hostile patterns.
    t = p = 0
    star_p, star_t = -1, 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] is _ONE or pattern[p] == text[t]):
            t += 1
            p += 1
        elif p < len(pattern) and pattern[p] is _ANY:
            star_p, star_t = p, t
            p += 1
        elif star_p >= 0:
            star_t += 1
            t, p = star_t, star_p + 1
        else:
            return False
    while p < len(pattern) and pattern[p] is _ANY:
        p += 1
    return p == len(pattern)


# -- built-in functions: on bad arguments, an error and the value the spec gives --------------


def _function_error(errors: Errors, message: str, kind: str = "functionEvaluation") -> None:
    errors.append(CesqlEvaluationError(kind, message))


def _substring(args: list[Value], errors: Errors) -> str:
    text, position = to_str(args[0]), to_int(args[1], errors)
    if position > len(text) or position < -len(text):
        _function_error(errors, "SUBSTRING position out of range")
        return ""
    if position == 0:
        return ""
    start = position - 1 if position > 0 else len(text) + position
    if len(args) == 2:
        return text[start:]
    length = to_int(args[2], errors)
    if length < 0:
        _function_error(errors, "SUBSTRING length is negative")
        return ""
    return text[start : start + length]


def _left(args: list[Value], errors: Errors) -> str:
    text, count = to_str(args[0]), to_int(args[1], errors)
    if count < 0:
        _function_error(errors, "LEFT length is negative")
        return text
    return text[:count]


def _right(args: list[Value], errors: Errors) -> str:
    text, count = to_str(args[0]), to_int(args[1], errors)
    if count < 0:
        _function_error(errors, "RIGHT length is negative")
        return text
    return text[len(text) - count :] if count < len(text) else text


def _abs(args: list[Value], errors: Errors) -> int:
    value = to_int(args[0], errors)
    if value == INT_MIN:
        _function_error(errors, "ABS overflows a 32-bit integer", "math")
        return INT_MAX
    return abs(value)


# name: (least arguments, most or None, zero value of the result, implementation)
FUNCTIONS: dict[str, tuple[int, int | None, Value, Callable[[list[Value], Errors], Value]]] = {
    "LENGTH": (1, 1, 0, lambda args, _errors: len(to_str(args[0]))),
    "CONCAT": (0, None, "", lambda args, _errors: "".join(to_str(a) for a in args)),
    "CONCAT_WS": (1, None, "",
                  lambda args, _errors: to_str(args[0]).join(to_str(a) for a in args[1:])),
    "LOWER": (1, 1, "", lambda args, _errors: to_str(args[0]).lower()),
    "UPPER": (1, 1, "", lambda args, _errors: to_str(args[0]).upper()),
    "TRIM": (1, 1, "", lambda args, _errors: to_str(args[0]).strip()),
    "LEFT": (2, 2, "", _left),
    "RIGHT": (2, 2, "", _right),
    "SUBSTRING": (2, 3, "", _substring),
    "ABS": (1, 1, 0, _abs),
    "INT": (1, 1, 0, lambda args, errors: to_int(args[0], errors)),
    "BOOL": (1, 1, False, lambda args, errors: to_bool(args[0], errors, explicit=True)),
    "STRING": (1, 1, "", lambda args, _errors: to_str(args[0])),
}
