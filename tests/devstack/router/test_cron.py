"""The five-field cron parser behind PingSource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.router import cron


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def firings(schedule: str, start: str, count: int, timezone: str | None = None) -> list[str]:
    parsed = cron.parse(schedule, timezone)
    moment, result = at(start), []
    for _ in range(count):
        moment = parsed.next_after(moment)
        result.append(moment.strftime("%Y-%m-%d %H:%M %a"))
    return result


@pytest.mark.parametrize(
    ("schedule", "start", "expected"),
    [
        ("* * * * *", "2024-01-01T00:00:30", ["2024-01-01 00:01 Mon", "2024-01-01 00:02 Mon"]),
        ("*/15 * * * *", "2024-01-01T00:00:00", ["2024-01-01 00:15 Mon", "2024-01-01 00:30 Mon"]),
        ("0 3 * * 1-5", "2024-01-05T04:00:00", ["2024-01-08 03:00 Mon", "2024-01-09 03:00 Tue"]),
        ("30 2 1 * *", "2024-01-31T00:00:00", ["2024-02-01 02:30 Thu", "2024-03-01 02:30 Fri"]),
        ("0 0 29 2 *", "2024-03-01T00:00:00", ["2028-02-29 00:00 Tue"]),
        ("@daily", "2024-01-01T12:00:00", ["2024-01-02 00:00 Tue"]),
        ("@hourly", "2024-01-01T12:00:00", ["2024-01-01 13:00 Mon"]),
        ("@weekly", "2024-01-01T12:00:00", ["2024-01-07 00:00 Sun"]),
        ("0 12 * JAN,mar sun", "2024-01-29T00:00:00", ["2024-03-03 12:00 Sun"]),
        ("0 0 * * 7", "2024-01-01T00:00:00", ["2024-01-07 00:00 Sun"]),
        ("5/20 1-2 * * *", "2024-01-01T00:00:00",
         ["2024-01-01 01:05 Mon", "2024-01-01 01:25 Mon", "2024-01-01 01:45 Mon", "2024-01-01 02:05 Mon"]),
        # Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * 5", "2024-01-01T00:00:00", ["2024-01-05 00:00 Fri", "2024-01-12 00:00 Fri", "2024-01-13 00:00 Sat"]),
        # One of them `*` or `?`: only the other counts.
        ("0 0 ? * 5", "2024-01-01T00:00:00", ["2024-01-05 00:00 Fri"]),
    ],
)
def test_next_firings(schedule, start, expected):
    assert firings(schedule, start, len(expected)) == expected


def test_time_zones_and_daylight_saving():
    rome = cron.parse("CRON_TZ=Europe/Rome 30 2 * * *")
    # 2024-03-31: 02:30 does not exist in Rome (clocks jump 02:00 -> 03:00): no firing that day.
    first = rome.next_after(at("2024-03-30T02:00:00"))
    assert first == at("2024-03-31T00:30:00") + timedelta(days=1)  # 02:30 CEST on April 1st
    assert rome.next_after(at("2024-03-29T12:00:00")) == at("2024-03-30T01:30:00")  # 02:30 CET
    # 2024-10-27: 02:30 happens twice in Rome; it fires once.
    autumn = rome.next_after(at("2024-10-26T12:00:00"))
    assert autumn == at("2024-10-27T00:30:00")
    assert rome.next_after(autumn) == at("2024-10-28T01:30:00")
    assert cron.parse("0 9 * * *", "America/New_York").next_after(at("2024-07-01T00:00:00")) == at(
        "2024-07-01T13:00:00")


@pytest.mark.parametrize(
    "schedule",
    ["", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
     "*/0 * * * *", "5-1 * * * *", "a * * * *", "1,,2 * * * *", "? * * * *", "@every 1m", "@reboot",
     "CRON_TZ=Nowhere/Land * * * * *", "0 0 31 2 *"],
)
def test_invalid_schedules(schedule):
    with pytest.raises(cron.CronError):
        cron.parse(schedule)


FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 59).map(str),
    st.tuples(st.integers(0, 30), st.integers(30, 59)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(1, 20).map(lambda n: f"*/{n}"),
    st.lists(st.integers(0, 59), min_size=1, max_size=4).map(lambda xs: ",".join(map(str, xs))),
)


@settings(max_examples=150, deadline=None)
@given(
    minute=FIELD,
    hour=st.one_of(st.just("*"), st.integers(0, 23).map(str), st.just("*/5"), st.just("8-17")),
    day=st.sampled_from(["*", "1", "15", "1-10", "*/3", "31"]),
    weekday=st.sampled_from(["*", "0", "1-5", "6,0", "3"]),
    start=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31)),
)
def test_next_after_is_the_first_matching_minute(minute, hour, day, weekday, start):
    schedule = cron.parse(f"{minute} {hour} {day} * {weekday}")
    moment = start.replace(tzinfo=UTC)
    found = schedule.next_after(moment)
    assert found > moment and found.second == 0
    # Brute force over every minute up to the answer (bounded: a few days at most).
    candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    horizon = min(found, candidate + timedelta(days=40))
    while candidate < horizon:
        assert not _fires(schedule, candidate), (candidate, found)
        candidate += timedelta(minutes=1)
    if found == horizon:
        assert _fires(schedule, found)


def _fires(schedule: cron.Schedule, moment: datetime) -> bool:
    weekday = moment.isoweekday() % 7
    in_month, in_week = moment.day in schedule.days, weekday in schedule.weekdays
    day_ok = (in_month or in_week) if schedule.days_restricted and schedule.weekdays_restricted else (
        in_month and in_week)
    return (moment.minute in schedule.minutes and moment.hour in schedule.hours
            and moment.month in schedule.months and day_ok)
