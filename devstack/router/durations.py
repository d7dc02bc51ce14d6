"""ISO-8601 durations as Knative's delivery fields use them (`PT0.5S`, `PT1M`, `P1D`).

Years and months are converted with average lengths (365.2425 days, a twelfth of that), as
the Go `period` package Knative uses does; any designator may carry a fraction.
"""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"P(?!$)"
    r"(?:(?P<years>\d+(?:[.,]\d+)?)Y)?"
    r"(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)"
    r"(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?"
    r")?",
    re.IGNORECASE,
)

_SECONDS = {
    "years": 365.2425 * 86400,
    "months": 365.2425 * 86400 / 12,
    "weeks": 7 * 86400,
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}


def parse_seconds(text: str) -> float:
    """Seconds in an ISO-8601 duration; ValueError names what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO-8601 duration string such as PT0.5S, got {text!r}")
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT0.5S or PT2M")
    return sum(
        float(value.replace(",", ".")) * _SECONDS[unit]
        for unit, value in match.groupdict().items()
        if value is not None
    )
