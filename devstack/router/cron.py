"""PingSource schedules, evaluated by croniter.

Knative's PingSource takes robfig/cron's standard syntax: five fields (minute hour
day-of-month month day-of-week), the descriptors @yearly @annually @monthly @weekly @daily
@midnight @hourly (not @every, which its webhook refuses), and a `CRON_TZ=Area/City ` or
`TZ=` prefix, which is what its `timezone` field turns into. This module takes the zone off
the front, refuses what PingSource refuses, and leaves the fields to croniter: when both
day fields are restricted a day matches either, as in robfig/cron.

At a change of daylight saving time croniter fires a time the clocks skip at the change
(robfig/cron skips it) and a time they repeat twice (as robfig/cron does); each firing is a
tick of its own in the router's ping_ticks table, so neither is emitted twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter


class CronError(ValueError):
    pass


DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                         "@hourly"})
_ZONE_PREFIX = re.compile(r"^(?:CRON_TZ|TZ)=(\S+)\s+")


@dataclass(frozen=True)
class Schedule:
    text: str  # as the manifest wrote it
    expression: str  # without the zone prefix
    zone: ZoneInfo

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (an aware datetime), in UTC."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        try:
            found = croniter(self.expression, moment.astimezone(self.zone)).get_next(datetime)
        except CroniterError:
            raise CronError(f"schedule {self.text!r} does not fire after {moment.isoformat()}"
                            ) from None
        return found.astimezone(UTC)


def parse(text: str, timezone: str | None = None) -> Schedule:
    """A PingSource's `schedule` and optional `timezone`; CronError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise CronError("empty schedule")
    expression = text.strip()
    prefix = _ZONE_PREFIX.match(expression)
    if prefix:
        if timezone:
            raise CronError("set the zone in spec.timezone or as a CRON_TZ= prefix, not both")
        timezone, expression = prefix[1], expression[prefix.end():]
    zone = _zone(timezone)
    if expression.startswith("@"):
        if expression not in DESCRIPTORS:
            raise CronError(f"unsupported descriptor {expression!r} "
                            f"(PingSource takes {', '.join(sorted(DESCRIPTORS))})")
    elif len(expression.split()) != 5:
        raise CronError(f"expected 5 fields (minute hour day month weekday) in {text!r}")
    try:
        croniter(expression)
    except CroniterError as error:
        raise CronError(f"schedule {text!r}: {error}") from None
    schedule = Schedule(text, expression, zone)
    schedule.next_after(datetime.now(UTC))  # refuses schedules that never fire (30 FEB)
    return schedule


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}") from None
