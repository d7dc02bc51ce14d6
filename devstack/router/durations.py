"""ISO 8601 durations as Knative's delivery fields write them (`PT0.5S`, `PT1M`, `P1D`),
parsed by isodate.

Years and months have no fixed length: they count as the Go `period` package Knative uses
counts them, 365.2425 days a year and a twelfth of that a month.
"""

from __future__ import annotations

from datetime import timedelta

import isodate

_YEAR_S = 365.2425 * 86400


def parse_seconds(text: str) -> float:
    """Seconds in an ISO 8601 duration; ValueError names what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration string such as PT0.5S, got {text!r}")
    try:
        parsed = isodate.parse_duration(text.strip())
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT0.5S or PT2M") from None
    if isinstance(parsed, timedelta):
        seconds = parsed.total_seconds()
    else:
        seconds = (float(parsed.years) * _YEAR_S + float(parsed.months) * _YEAR_S / 12
                   + parsed.tdelta.total_seconds())
    if seconds < 0:
        raise ValueError(f"{text!r} is negative: a delay or timeout is a positive duration")
    return seconds
