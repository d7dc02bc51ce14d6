"""Sentinel-1 auxiliary, orbit and mission-planning file names.

A name is recognised in two steps. First its *family* is found from a fixed
prefix: the SAFE layout `S1x_AUX_ccc_...` or the Earth Explorer layout
`S1x_OPER_<10-char type>_...`. A name of either family whose product type is
not in the type table is `type_unknown`: it is a Sentinel-1 product we do not
serve, which callers may want to report differently from garbage. Then the
rest of the name is checked against the layout the table gives for the type.

Logical name: what the product is called once unpacked (`X.SAFE`, `X.EOF`).
A mission-planning `.tgz` has no unpacked form of its own (the archive *is*
the product), so its logical name is the name itself, container "" and
format "TGZ".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from shared.core.s1time import OPEN_END, parse_compact

NAME_INVALID = "name_invalid"
TYPE_UNKNOWN = "type_unknown"

SAFE = "safe"
ORBIT = "orbit"
MPL = "mpl"
LAYOUTS = (SAFE, ORBIT, MPL)

ENV_EXTRA_TYPES = "AUXIP_EXTRA_PRODUCT_TYPES"
MAX_NAME_LENGTH = 255


class NameRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ProductName:
    name: str
    logical_name: str
    container: str  # "" | "zip" | "tgz"
    format: str  # "SAFE" | "EOF" | "TGZ"
    mission: str
    unit: str  # "A".."D", or "" for a product valid for all units (S1_)
    product_type: str
    validity_start: datetime
    validity_stop: datetime
    generation: datetime | None
    version: int | None

    @property
    def platform_serial(self) -> str:
        return self.unit


_SAFE_TYPES = (
    "CAL", "INS", "PP1", "PP2", "SCS", "SCF", "ITC", "ML2", "ICE", "WAV", "WND", "TEC", "TRO",
)

BUILTIN_TYPES: Mapping[str, str] = MappingProxyType(
    {
        **{f"AUX_{t}": SAFE for t in _SAFE_TYPES},
        **{t: ORBIT for t in ("AUX_POEORB", "AUX_RESORB", "AUX_PREORB", "AUX_RESATT")},
        **{t: ORBIT for t in ("AMH_ERRMAT", "AMV_ERRMAT")},
        **{t: MPL for t in ("MPL_ORBPRE", "MPL_ORBSCT", "MPL_TIMELINE")},
    }
)

# Earth Explorer types are 10 characters padded with "_" (REP__SUP__), except
# a few longer ones such as MPL_TIMELINE. The long form may not contain "_"
# after its prefix, so a name can never be read both ways.
_EE_TYPE = r"[A-Z0-9_]{10}|[A-Z0-9]{3}_[A-Z0-9]{8}"
_TYPE_SYNTAX = {
    SAFE: re.compile(r"AUX_[A-Z0-9]{3}", re.ASCII),
    ORBIT: re.compile(_EE_TYPE, re.ASCII),
    MPL: re.compile(_EE_TYPE, re.ASCII),
}


def load_type_table(extra: str | None) -> Mapping[str, str]:
    """Built-in types plus `extra`, a comma-separated list of `TYPE=layout`.

    A malformed entry raises ValueError: a configuration mistake should stop
    the service at start-up, not silently refuse products later.
    """
    table = dict(BUILTIN_TYPES)
    for entry in (extra or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        product_type, sep, layout = (part.strip() for part in entry.partition("="))
        if not sep or layout not in LAYOUTS:
            raise ValueError(
                f"{ENV_EXTRA_TYPES}: entry {entry!r} is not TYPE=layout with layout in {LAYOUTS}"
            )
        if not _TYPE_SYNTAX[layout].fullmatch(product_type):
            raise ValueError(
                f"{ENV_EXTRA_TYPES}: {product_type!r} is not a valid {layout} product type"
            )
        if table.get(product_type, layout) != layout:
            raise ValueError(
                f"{ENV_EXTRA_TYPES}: {product_type!r} is already a {table[product_type]} type"
            )
        table[product_type] = layout
    return MappingProxyType(table)


# Read once at import: functions get their configuration from the environment
# at start-up, and a bad value then fails the start instead of later parses.
DEFAULT_TYPES: Mapping[str, str] = load_type_table(os.environ.get(ENV_EXTRA_TYPES))

_T = r"[0-9]{8}T[0-9]{6}"
_SAFE_PREFIX = re.compile(r"S1([ABCD_])_(AUX_[A-Z0-9]{3})_", re.ASCII)
_EE_PREFIX = re.compile(rf"S1([ABCD_])_OPER_({_EE_TYPE})_", re.ASCII)
# Each layout regex matches what follows "<type>_", up to and including the suffix.
_SAFE_REST = re.compile(
    rf"V(?P<start>{_T})(?:_(?P<stop>{_T}))?_G(?P<gen>{_T})"
    r"(?P<suffix>\.SAFE|\.SAFE\.zip|\.SAFE\.tgz|\.zip|\.tgz)",
    re.ASCII,
)
_ORBIT_REST = re.compile(
    rf"[A-Z0-9_]{{4}}_(?P<gen>{_T})_V(?P<start>{_T})_(?P<stop>{_T})"
    r"(?P<suffix>\.EOF|\.EOF\.zip|\.zip)",
    re.ASCII,
)
_MPL_REST = re.compile(
    rf"(?P<start>{_T})_(?P<stop>{_T})(?:_(?P<version>[0-9]{{4}}))?(?P<suffix>\.EOF|\.tgz)",
    re.ASCII,
)
_REST = {SAFE: _SAFE_REST, ORBIT: _ORBIT_REST, MPL: _MPL_REST}

# suffix -> (container, format, extension of the logical name or None when the
# name itself is the logical name)
_SUFFIXES = {
    SAFE: {
        ".SAFE": ("", "SAFE", ".SAFE"),
        ".SAFE.zip": ("zip", "SAFE", ".SAFE"),
        ".SAFE.tgz": ("tgz", "SAFE", ".SAFE"),
        ".zip": ("zip", "SAFE", ".SAFE"),
        ".tgz": ("tgz", "SAFE", ".SAFE"),
    },
    ORBIT: {
        ".EOF": ("", "EOF", ".EOF"),
        ".EOF.zip": ("zip", "EOF", ".EOF"),
        ".zip": ("zip", "EOF", ".EOF"),
    },
    MPL: {
        ".EOF": ("", "EOF", ".EOF"),
        ".tgz": ("", "TGZ", None),
    },
}


def _time(text: str, what: str, *, open_allowed: bool = False) -> datetime:
    try:
        value = parse_compact(text)
    except ValueError as exc:
        raise NameRejected(NAME_INVALID, f"{what}: {exc}") from None
    if value is OPEN_END and not open_allowed:
        raise NameRejected(NAME_INVALID, f"{what} cannot be open-ended: {text!r}")
    return value


def parse(name: str, types: Mapping[str, str] | None = None) -> ProductName:
    """Parse a file name; raise NameRejected(reason, detail) for anything not accepted."""
    if types is None:
        types = DEFAULT_TYPES
    if not isinstance(name, str):
        raise NameRejected(NAME_INVALID, f"file name must be a string, got {type(name).__name__}")
    if len(name) > MAX_NAME_LENGTH:
        raise NameRejected(NAME_INVALID, f"longer than {MAX_NAME_LENGTH} characters")
    if not name.isascii():
        raise NameRejected(NAME_INVALID, "contains non-ASCII characters")
    if "/" in name or "\\" in name:
        raise NameRejected(NAME_INVALID, "contains a path separator")

    family = SAFE
    prefix = _SAFE_PREFIX.match(name)
    if prefix is None:
        family = ORBIT  # Earth Explorer family, either ORBIT or MPL layout
        prefix = _EE_PREFIX.match(name)
    if prefix is None:
        raise NameRejected(NAME_INVALID, f"not a Sentinel-1 auxiliary file name: {name!r}")
    unit_char, product_type = prefix.groups()

    layout = types.get(product_type)
    if layout is None or (layout == SAFE) != (family == SAFE):
        raise NameRejected(TYPE_UNKNOWN, f"product type {product_type!r} is not served")
    if unit_char == "_" and layout != SAFE:
        # Orbit and mission-planning files always belong to one satellite.
        raise NameRejected(NAME_INVALID, f"{product_type} names need a unit (S1A..S1D)")

    rest = _REST[layout].fullmatch(name, prefix.end())
    if rest is None:
        raise NameRejected(
            NAME_INVALID, f"{name!r} does not follow the {layout} layout of {product_type}"
        )
    fields = rest.groupdict()

    start = _time(fields["start"], "validity start")
    stop = OPEN_END
    if fields["stop"] is not None:
        stop = _time(fields["stop"], "validity stop", open_allowed=True)
    if start > stop:
        raise NameRejected(NAME_INVALID, "validity start is after validity stop")
    generation = None if fields.get("gen") is None else _time(fields["gen"], "generation time")
    version = None if fields.get("version") is None else int(fields["version"])

    suffix = fields["suffix"]
    container, fmt, logical_ext = _SUFFIXES[layout][suffix]
    logical_name = name if logical_ext is None else name[: -len(suffix)] + logical_ext
    return ProductName(
        name=name,
        logical_name=logical_name,
        container=container,
        format=fmt,
        mission="S1",
        unit="" if unit_char == "_" else unit_char,
        product_type=product_type,
        validity_start=start,
        validity_stop=stop,
        generation=generation,
        version=version,
    )
