from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.s1time import (
    OPEN_END,
    UTC,
    canonical_to_odata,
    format_canonical,
    format_odata,
    parse_compact,
    parse_iso,
)


def test_open_end_is_the_last_instant():
    assert OPEN_END == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_parse_compact():
    assert parse_compact("20171017T080000") == datetime(2017, 10, 17, 8, 0, tzinfo=UTC)
    assert parse_compact("99999999T999999") is OPEN_END


@pytest.mark.parametrize(
    "text",
    ["20171317T080000", "20170230T000000", "20171017T240000", "2017101T080000", "20171017080000",
     "20171017T080000Z", " 20171017T080000", "２0171017T080000", ""],
)
def test_parse_compact_refuses(text):
    with pytest.raises(ValueError):
        parse_compact(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        # Forms copied from the real samples.
        ("UTC=2017-12-13T10:27:37", datetime(2017, 12, 13, 10, 27, 37, tzinfo=UTC)),
        ("2017-10-17T08:00:00.000000", datetime(2017, 10, 17, 8, tzinfo=UTC)),
        ("2016-05-02T04:36:07.059812", datetime(2016, 5, 2, 4, 36, 7, 59812, tzinfo=UTC)),
        ("2020-05-18-T08:45:34.000000", datetime(2020, 5, 18, 8, 45, 34, tzinfo=UTC)),
        ("UTC=9999-99-99T99:99:99", OPEN_END),
        ("2014-02-01T00:00:00", datetime(2014, 2, 1, tzinfo=UTC)),
        # Other lenient forms.
        ("  UTC=2017-12-13T10:27:37\r\n", datetime(2017, 12, 13, 10, 27, 37, tzinfo=UTC)),
        ("2017-10-17T08:00:00Z", datetime(2017, 10, 17, 8, tzinfo=UTC)),
        ("2017-10-17T08:00:00.5Z", datetime(2017, 10, 17, 8, 0, 0, 500000, tzinfo=UTC)),
        ("2017-10-17T08:00:00.123", datetime(2017, 10, 17, 8, 0, 0, 123000, tzinfo=UTC)),
        ("2017-10-17T08:00:00.1234567899", datetime(2017, 10, 17, 8, 0, 0, 123456, tzinfo=UTC)),
        ("9999-99-99T99:99:99", OPEN_END),
        ("9999-99-99T99:99:99.999999Z", OPEN_END),
    ],
)
def test_parse_iso(text, expected):
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "TAI=2017-12-13T10:28:14.593331",  # other time scales are refused, not converted
        "UT1=2017-12-13T10:27:37.825154",
        "GPS=2017-12-13T10:27:55",
        "0000-00-00T00:00:00.000000Z",  # AUX_WAV timeReference placeholder
        "2017-13-01T00:00:00",
        "2017-10-17 08:00:00",
        "2017-10-17T08:00",
        "2017-10-17T08:00:00+02:00",
        "2017-10-17T08:00:00.",
        "UTC=",
        "",
    ],
)
def test_parse_iso_refuses(text):
    with pytest.raises(ValueError, match="UTC|date"):
        parse_iso(text)


def test_formats():
    dt = datetime(2017, 10, 17, 8, 0, 0, 123999, tzinfo=UTC)
    assert format_odata(dt) == "2017-10-17T08:00:00.123Z"  # truncated, not rounded
    assert format_canonical(dt) == "2017-10-17T08:00:00.123999Z"
    assert format_odata(datetime(2017, 10, 17, 8, tzinfo=UTC)) == "2017-10-17T08:00:00.000Z"
    assert format_canonical(datetime(2017, 10, 17, 8, tzinfo=UTC)) == "2017-10-17T08:00:00.000000Z"
    assert format_canonical(OPEN_END) == "9999-12-31T23:59:59.999999Z"
    assert format_canonical(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"


def test_formats_convert_other_offsets_and_refuse_naive():
    paris = timezone(timedelta(hours=2))
    assert format_odata(datetime(2017, 10, 17, 10, tzinfo=paris)) == "2017-10-17T08:00:00.000Z"
    with pytest.raises(ValueError, match="naive"):
        format_canonical(datetime(2017, 10, 17))
    with pytest.raises(ValueError, match="naive"):
        format_odata(datetime(2017, 10, 17))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.sampled_from([ZoneInfo("Etc/UTC"), ZoneInfo("Europe/Paris"),
                                               timezone(timedelta(seconds=-30)),
                                               timezone(timedelta(hours=-5))])))
def test_odata_form_of_any_zone_is_its_utc_instant(dt):
    # psycopg hands timestamptz over in the session's zone (a ZoneInfo).
    assert format_odata(dt) == format_odata(dt.astimezone(UTC))


aware = st.datetimes(timezones=st.just(UTC))


@given(aware)
def test_canonical_round_trips(dt):
    assert parse_iso(format_canonical(dt)) == dt


@given(aware, aware)
def test_canonical_order_is_time_order(a, b):
    assert (format_canonical(a) < format_canonical(b)) == (a < b)


@given(aware)
def test_odata_round_trips_to_the_millisecond(dt):
    assert parse_iso(format_odata(dt)) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)


@given(st.text(max_size=40))
def test_parsers_only_raise_value_error(text):
    for parser in (parse_iso, parse_compact):
        try:
            result = parser(text)
        except ValueError:
            continue
        assert result.tzinfo is UTC


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_stored_date_time_gives_the_odata_form_of_its_instant(dt):
    # The fast path (slicing the canonical text) against the parse-and-format it replaces.
    assert canonical_to_odata(format_canonical(dt)) == format_odata(dt)
    assert format_odata(dt) == (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:"
                                f"{dt.minute:02d}:{dt.second:02d}.{dt.microsecond // 1000:03d}Z")


def test_a_stored_value_that_is_no_date_time_is_refused_as_before():
    with pytest.raises(ValueError, match="month must be in 1..12"):
        canonical_to_odata("2020-13-01T00:00:00.000000Z")
    with pytest.raises(ValueError, match="day is out of range"):
        canonical_to_odata("2021-02-29T00:00:00.000000Z")
    assert canonical_to_odata("UTC=2020-05-18T08:45:34.5") == "2020-05-18T08:45:34.500Z"
