"""Trigger filters: Knative's legacy `spec.filter.attributes` and the `spec.filters` dialects.

A filter is a predicate over the event's context attributes (every value a string; `data`
is never looked at). Validation mirrors Knative's webhook: one dialect per filter;
exact/prefix/suffix hold exactly one attribute whose name is lower-case alphanumeric and
starts with a letter; a CESQL expression must parse. A filter with no dialect matches
every event, as in Knative.

Knative names the CESQL dialect `sql`; `cesql` is accepted as an alias.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from devstack.router import cesql

Attributes = Mapping[str, str]
Filter = Callable[[Attributes], bool]

_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9]*")
DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "sql", "cesql")


class FilterError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def match_all(_attributes: Attributes) -> bool:
    return True


def legacy(attributes: Any, path: str) -> Filter:
    """`spec.filter.attributes`: every listed attribute exists and equals the value; the
    empty string matches any value (Knative's TriggerAnyFilter)."""
    if attributes is None:
        return match_all
    if not isinstance(attributes, Mapping):
        raise FilterError(path, "must be a map of attribute name to value")
    wanted: dict[str, str] = {}
    for name, value in attributes.items():
        _check_name(name, f"{path}.{name}")
        if not isinstance(value, str):
            raise FilterError(f"{path}.{name}", "value must be a string")
        wanted[name] = value

    def test(event: Attributes) -> bool:
        for name, value in wanted.items():
            present = event.get(name)
            if present is None or (value != "" and present != value):
                return False
        return True

    return test


def from_list(filters: Any, path: str) -> Filter:
    """`spec.filters`: all of the list must match."""
    if not isinstance(filters, list):
        raise FilterError(path, "must be a list of filters")
    compiled = [from_spec(item, f"{path}[{i}]") for i, item in enumerate(filters)]
    return _all(compiled)


def from_spec(spec: Any, path: str) -> Filter:
    if not isinstance(spec, Mapping):
        raise FilterError(path, "a filter must be a map with one dialect")
    unknown = sorted(set(spec) - set(DIALECTS))
    if unknown:
        raise FilterError(path, f"unknown filter dialect {unknown[0]!r} (known: {', '.join(DIALECTS)})")
    present = [key for key in DIALECTS if _is_set(key, spec.get(key))]
    if len(present) > 1:
        raise FilterError(path, f"one dialect per filter, found {', '.join(present)}")
    if not present:
        return match_all
    dialect = present[0]
    value = spec[dialect]
    where = f"{path}.{dialect}"
    if dialect in ("exact", "prefix", "suffix"):
        name, expected = _single_attribute(value, where)
        return _attribute_test(dialect, name, expected)
    if dialect in ("all", "any"):
        if not isinstance(value, list):
            raise FilterError(where, "must be a list of filters")
        members = [from_spec(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return _all(members) if dialect == "all" else _any(members)
    if dialect == "not":
        inner = from_spec(value, where)
        return lambda event: not inner(event)
    if not isinstance(value, str):
        raise FilterError(where, "must be a CESQL expression string")
    try:
        expression = cesql.parse(value)
    except cesql.CesqlError as error:
        raise FilterError(where, f"invalid CESQL {value!r}: {error}") from None
    return expression.matches


def _is_set(dialect: str, value: Any) -> bool:
    # Knative tests maps, lists and strings for emptiness but `not` for presence only, so
    # `not: {}` negates the match-everything filter.
    if dialect == "not":
        return value is not None
    return value is not None and value != {} and value != [] and value != ""


def _single_attribute(value: Any, path: str) -> tuple[str, str]:
    if not isinstance(value, Mapping):
        raise FilterError(path, "must be a map with one attribute")
    if len(value) != 1:
        raise FilterError(path, "multiple items found, can have only one key-value")
    ((name, expected),) = value.items()
    _check_name(name, f"{path}.{name}")
    if not isinstance(expected, str):
        raise FilterError(f"{path}.{name}", "value must be a string")
    return name, expected


def _check_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
        raise FilterError(
            path, "attribute name must start with a letter and hold only lower-case alphanumerics"
        )


def _attribute_test(dialect: str, name: str, expected: str) -> Filter:
    if dialect == "exact":
        return lambda event: event.get(name) == expected
    if dialect == "prefix":
        return lambda event: (value := event.get(name)) is not None and value.startswith(expected)
    return lambda event: (value := event.get(name)) is not None and value.endswith(expected)


def _all(members: list[Filter]) -> Filter:
    if not members:
        return match_all
    if len(members) == 1:
        return members[0]
    return lambda event: all(member(event) for member in members)


def _any(members: list[Filter]) -> Filter:
    if not members:
        return match_all
    return lambda event: any(member(event) for member in members)
