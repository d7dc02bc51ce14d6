"""PingSource schedules: what Knative's PingSource takes (zone prefixes, descriptors, day
fields) and refuses, evaluated by croniter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devstack.router import cron


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def firings(schedule: str, start: str, count: int, timezone: str | None = None) -> list[str]:
    parsed = cron.parse(schedule, timezone)
    moment, result = at(start), []
    for _ in range(count):
        moment = parsed.next_after(moment)
        assert moment.tzinfo is UTC
        result.append(moment.strftime("%Y-%m-%d %H:%M %a"))
    return result


@pytest.mark.parametrize(
    ("schedule", "start", "expected"),
    [
        ("* * * * *", "2024-01-01T00:00:30", ["2024-01-01 00:01 Mon", "2024-01-01 00:02 Mon"]),
        ("*/15 * * * *", "2024-01-01T00:00:00", ["2024-01-01 00:15 Mon", "2024-01-01 00:30 Mon"]),
        ("0 3 * * 1-5", "2024-01-05T04:00:00", ["2024-01-08 03:00 Mon", "2024-01-09 03:00 Tue"]),
        ("0 0 29 2 *", "2024-03-01T00:00:00", ["2028-02-29 00:00 Tue"]),
        ("@yearly", "2024-06-01T00:00:00", ["2025-01-01 00:00 Wed"]),
        ("@annually", "2024-06-01T00:00:00", ["2025-01-01 00:00 Wed"]),
        ("@monthly", "2024-01-31T12:00:00", ["2024-02-01 00:00 Thu"]),
        ("@weekly", "2024-01-01T12:00:00", ["2024-01-07 00:00 Sun"]),
        ("@daily", "2024-01-01T12:00:00", ["2024-01-02 00:00 Tue"]),
        ("@midnight", "2024-01-01T12:00:00", ["2024-01-02 00:00 Tue"]),
        ("@hourly", "2024-01-01T12:00:00", ["2024-01-01 13:00 Mon"]),
        ("0 12 * JAN,mar sun", "2024-01-29T00:00:00", ["2024-03-03 12:00 Sun"]),
        ("5/20 1-2 * * *", "2024-01-01T00:00:00",
         ["2024-01-01 01:05 Mon", "2024-01-01 01:25 Mon", "2024-01-01 01:45 Mon", "2024-01-01 02:05 Mon"]),
        # Both day fields restricted: either matches (the 13th, or any Friday), as robfig/cron.
        ("0 0 13 * 5", "2024-01-01T00:00:00", ["2024-01-05 00:00 Fri", "2024-01-12 00:00 Fri", "2024-01-13 00:00 Sat"]),
        ("0 0 */10 * 5", "2024-01-01T00:00:00", ["2024-01-05 00:00 Fri", "2024-01-11 00:00 Thu"]),
        # One of them `*` or `?`: only the other counts.
        ("0 0 ? * 5", "2024-01-01T00:00:00", ["2024-01-05 00:00 Fri", "2024-01-12 00:00 Fri"]),
        ("0 0 1 * ?", "2024-01-05T00:00:00", ["2024-02-01 00:00 Thu"]),
    ],
)
def test_next_firings(schedule, start, expected):
    assert firings(schedule, start, len(expected)) == expected


def test_the_zone_comes_from_the_prefix_or_the_timezone_field():
    # 09:00 in New York is 13:00 UTC in summer, 14:00 in winter.
    for schedule, timezone in (("0 9 * * *", "America/New_York"),
                               ("CRON_TZ=America/New_York 0 9 * * *", None),
                               ("TZ=America/New_York 0 9 * * *", None)):
        assert firings(schedule, "2024-07-01T00:00:00", 1, timezone) == ["2024-07-01 13:00 Mon"]
        assert firings(schedule, "2024-12-01T00:00:00", 1, timezone) == ["2024-12-01 14:00 Sun"]
    assert cron.parse("CRON_TZ=Europe/Rome @daily").zone.key == "Europe/Rome"
    assert cron.parse("@daily").zone.key == "UTC"


def test_daylight_saving_changes():
    rome = "CRON_TZ=Europe/Rome 30 2 * * *"
    # 2024-03-30 02:30 CET, then 2024-03-31, where 02:30 does not exist (02:00 -> 03:00): it
    # fires at the change, 03:00 CEST; then 02:30 CEST.
    assert firings(rome, "2024-03-29T12:00:00", 3) == [
        "2024-03-30 01:30 Sat", "2024-03-31 01:00 Sun", "2024-04-01 00:30 Mon"]
    # 2024-10-27: 02:30 happens twice in Rome (CEST, then CET); each is a firing.
    assert firings(rome, "2024-10-26T12:00:00", 3) == [
        "2024-10-27 00:30 Sun", "2024-10-27 01:30 Sun", "2024-10-28 01:30 Mon"]


@pytest.mark.parametrize(
    ("schedule", "timezone", "message"),
    [
        ("", None, "empty"),
        ("* * * *", None, "5 fields"),
        ("* * * * * *", None, "5 fields"),  # robfig/cron's standard parser has no seconds
        ("60 * * * *", None, "60"),
        ("* 24 * * *", None, "24"),
        ("* * 0 * *", None, "0"),
        ("* * * 13 *", None, "13"),
        ("* * * * 8", None, "8"),
        ("*/0 * * * *", None, "step"),
        ("a * * * *", None, "a"),
        ("1,,2 * * * *", None, "1,,2"),
        ("? * * * *", None, "Question mark"),
        ("@every 1m", None, "unsupported descriptor '@every 1m'"),
        ("@reboot", None, "unsupported descriptor"),
        ("CRON_TZ=Nowhere/Land * * * * *", None, "unknown time zone 'Nowhere/Land'"),
        ("* * * * *", "Nowhere/Land", "unknown time zone"),
        ("CRON_TZ=Europe/Rome * * * * *", "Europe/Rome", "not both"),
        ("0 0 31 2 *", None, "0 0 31 2"),  # never fires
    ],
)
def test_invalid_schedules(schedule, timezone, message):
    with pytest.raises(cron.CronError, match=message):
        cron.parse(schedule, timezone)


def test_next_after_needs_an_aware_moment():
    with pytest.raises(ValueError, match="aware"):
        cron.parse("@hourly").next_after(datetime(2024, 1, 1))
