"""Which routes want a product: a route's `match` must hold and its `exclude` must not."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shared.pipeline.routing.config import Match, Route


@dataclass(frozen=True)
class Facts:
    """What rules look at, from the catalogue row and the origin lookup."""

    name: str  # as distributed (X.SAFE.zip, X.EOF)
    logical_name: str  # as it arrived, without container suffix (X.SAFE)
    product_type: str
    platform_serial: str
    origin: str  # 'inbox' or 'poll:<source>'
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, product: Mapping[str, Any], origin: str) -> Facts:
        return cls(name=product["name"] or product["logical_name"],
                   logical_name=product["logical_name"], product_type=product["product_type"],
                   platform_serial=product["platform_serial"], origin=origin,
                   attributes=product.get("attributes") or {})


def applies(route: Route, facts: Facts) -> bool:
    return matches(route.match, facts) and not (route.exclude is not None
                                                and matches(route.exclude, facts))


def matches(match: Match, facts: Facts) -> bool:
    if match.product_type is not None and not _any_glob(match.product_type, facts.product_type):
        return False
    if match.name is not None and not (_any_glob(match.name, facts.name)
                                       or _any_glob(match.name, facts.logical_name)):
        return False
    if match.name_regex is not None and not _regex(match.name_regex).search(facts.name):
        return False
    if match.platform_serial is not None and facts.platform_serial not in match.platform_serial:
        return False
    if match.origin is not None and not _any_glob(match.origin, facts.origin):
        return False
    for attribute, wanted in match.attributes.items():
        if attribute not in facts.attributes:
            return False
        options = wanted if isinstance(wanted, list) else [wanted]
        if _text(facts.attributes[attribute]) not in {_text(o) for o in options}:
            return False
    return True


def _any_glob(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


@lru_cache(maxsize=256)
def _regex(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _text(value: Any) -> str:
    """One spelling per value: YAML's 1 and the catalogue's 1.0 or "1" compare equal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
