"""Five-field cron schedules, as PingSource accepts them (robfig/cron's standard parser).

Fields: minute hour day-of-month month day-of-week, each `*`, `?` (day fields), a value, a
range `a-b`, a step `*/n`, `a-b/n` or `a/n` (a to the field's end), or a comma list of
those; month and weekday names (JAN, MON) in any case; weekday 7 is Sunday. Descriptors
@yearly @annually @monthly @weekly @daily @midnight @hourly. A `CRON_TZ=Area/City ` (or
`TZ=`) prefix sets the zone, as does PingSource's `timezone` field.

When both day fields are restricted a day matches either (classic cron); when one is `*`
or `?` only the other counts. Times that a DST change skips never fire; a repeated hour
fires once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class CronError(ValueError):
    pass


_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_WEEKDAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_ZONE_PREFIX = re.compile(r"^(?:CRON_TZ|TZ)=(\S+)\s+")
# Search horizon: a schedule that fires less than once in this many years is refused.
_HORIZON_YEARS = 8


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _WEEKDAYS),
)


@dataclass(frozen=True)
class Schedule:
    text: str
    zone: ZoneInfo
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (an aware datetime), in UTC."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        # Walk local wall-clock time, jumping whole months/days/hours when they cannot match.
        local = moment.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        local += timedelta(minutes=1)
        limit = local.year + _HORIZON_YEARS
        while local.year <= limit:
            if local.month not in self.months:
                local = _first_of_next_month(local)
                continue
            if not self._day_matches(local):
                local = local.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if local.hour not in self.hours:
                local = local.replace(minute=0) + timedelta(hours=1)
                continue
            if local.minute not in self.minutes:
                local += timedelta(minutes=1)
                continue
            aware = local.replace(tzinfo=self.zone)
            instant = aware.astimezone(UTC)
            skipped = instant.astimezone(self.zone).replace(tzinfo=None) != local
            if skipped or instant <= moment:
                local += timedelta(minutes=1)
                continue
            return instant
        raise CronError(f"schedule {self.text!r} does not fire within {_HORIZON_YEARS} years")

    def _day_matches(self, local: datetime) -> bool:
        in_month = local.day in self.days
        in_week = (local.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week


def parse(text: str, timezone: str | None = None) -> Schedule:
    if not isinstance(text, str) or not text.strip():
        raise CronError("empty schedule")
    spec = text.strip()
    zone_name = timezone
    prefix = _ZONE_PREFIX.match(spec)
    if prefix:
        zone_name = prefix[1]
        spec = spec[prefix.end():]
    zone = _zone(zone_name)
    if spec.startswith("@"):
        expanded = _DESCRIPTORS.get(spec.lower())
        if expanded is None:
            raise CronError(f"unsupported descriptor {spec!r} (known: {', '.join(_DESCRIPTORS)})")
        spec = expanded
    parts = spec.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)} in {text!r}")
    values = [_parse_field(part, field) for part, field in zip(parts, _FIELDS)]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    schedule = Schedule(
        text=text,
        zone=zone,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        days_restricted=not parts[2].startswith(("*", "?")),
        weekdays_restricted=not parts[4].startswith(("*", "?")),
    )
    schedule.next_after(datetime.now(UTC))  # refuses schedules that never fire (30 FEB)
    return schedule


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}") from None


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"empty list item in {field.name} field {text!r}")
        values |= _parse_item(item, field)
    return frozenset(values)


def _parse_item(item: str, field: _Field) -> set[int]:
    range_part, _, step_part = item.partition("/")
    step = 1
    if step_part or item.endswith("/"):
        step = _number(step_part, field, what="step")
        if step < 1:
            raise CronError(f"step must be at least 1 in {field.name} field {item!r}")
    if range_part in ("*", "?"):
        if range_part == "?" and field.name not in ("day-of-month", "day-of-week"):
            raise CronError(f"'?' is only allowed in the day fields, not {field.name}")
        low, high = field.low, field.high
    elif "-" in range_part:
        start, _, end = range_part.partition("-")
        low, high = _value(start, field), _value(end, field)
        if low > high:
            raise CronError(f"range {range_part!r} runs backwards in {field.name} field")
    else:
        low = _value(range_part, field)
        high = field.high if step_part else low
    return set(range(low, high + 1, step))


def _value(text: str, field: _Field) -> int:
    if field.names and text.upper() in field.names:
        return field.names[text.upper()]
    value = _number(text, field, what="value")
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name} value {value} outside {field.low}-{field.high}")
    return value


def _number(text: str, field: _Field, what: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise CronError(f"bad {what} {text!r} in {field.name} field")
    return int(text)


def _first_of_next_month(local: datetime) -> datetime:
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return local.replace(year=year, month=month, day=1, hour=0, minute=0)
