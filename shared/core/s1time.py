"""Time formats met in Sentinel-1 file names and headers, and the two we write.

Every datetime handled here is timezone-aware UTC. Sentinel-1 ground segment
files only carry UTC (validity, creation), so a value tagged with another time
scale (``TAI=``, ``UT1=``, ``GPS=``) is refused rather than silently converted:
converting needs a leap-second table and such values never appear where we
read dates.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

UTC = timezone.utc

# Stands for "valid until further notice". It is the largest representable
# instant so that interval comparisons need no special case.
OPEN_END = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_OPEN_COMPACT = "99999999T999999"
_OPEN_ISO = re.compile(r"9999-99-99T99:99:99(?:\.[0-9]*)?Z?", re.ASCII)

_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})", re.ASCII)

# The optional "-" before "T" tolerates `2020-05-18-T08:45:34` (real AUX_TRO).
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})-?T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?Z?",
    re.ASCII,
)
_SCALE_PREFIX = re.compile(r"([A-Z0-9]{2,4})=", re.ASCII)


def _build(text: str, fields: tuple[str, ...], fraction: str | None = None) -> datetime:
    year, month, day, hour, minute, second = (int(f) for f in fields)
    # Truncate, never round: rounding could push a stop time past a boundary.
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid date/time {text!r}: {exc}") from None


def parse_compact(text: str) -> datetime:
    """Parse `YYYYMMDDThhmmss` as used in file names; `99999999T999999` is OPEN_END."""
    if text == _OPEN_COMPACT:
        return OPEN_END
    match = _COMPACT.fullmatch(text)
    if match is None:
        raise ValueError(f"not a compact date/time (YYYYMMDDThhmmss): {text!r}")
    return _build(text, match.groups())


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 UTC value the way real S1 headers and manifests write it.

    Accepts a `UTC=` prefix, any number of fractional digits (truncated to
    microseconds), an optional `Z`, surrounding whitespace, the malformed
    `YYYY-MM-DD-Thh:mm:ss` and the open end `9999-99-99T99:99:99`.
    """
    value = text.strip()
    scale = _SCALE_PREFIX.match(value)
    if scale is not None:
        if scale.group(1) != "UTC":
            raise ValueError(f"only UTC times are accepted, got {scale.group(1)} in {text!r}")
        value = value[scale.end():]
    if _OPEN_ISO.fullmatch(value):
        return OPEN_END
    match = _ISO.fullmatch(value)
    if match is None:
        raise ValueError(f"not an ISO-8601 UTC date/time: {text!r}")
    return _build(text, match.groups()[:6], match.group(7))


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime refused (UTC expected): {dt!r}")
    return dt.astimezone(UTC)


def format_odata(dt: datetime) -> str:
    """`2017-10-17T08:00:00.000Z`: the millisecond form OData clients expect (truncated,
    never rounded). isoformat is C: a page of products formats ~6 dates per row. Rows come
    from PostgreSQL in its session zone (a ZoneInfo, UTC): the offset isoformat writes
    tells UTC apart without asking the zone again."""
    text = dt.isoformat(timespec="milliseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return _as_utc(dt).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# What format_canonical writes (stored attributes): its OData form is a prefix of it.
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z",
                        re.ASCII)


def canonical_to_odata(text: str) -> str:
    """The OData form of a stored date/time string: sliced when it is canonical (as
    ingestion stores them), else parsed (which refuses what is not a date/time)."""
    if _CANONICAL.fullmatch(text):
        try:
            datetime.fromisoformat(text[:26])  # a real date and time (C, fast)
            return text[:23] + "Z"
        except ValueError:
            pass  # parse_iso says why
    return format_odata(parse_iso(text))


def format_canonical(dt: datetime) -> str:
    """`2017-10-17T08:00:00.000000Z`: fixed width, so string order is time order."""
    dt = _as_utc(dt)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond:06d}Z"
    )
