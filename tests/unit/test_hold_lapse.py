"""When a hold lapses: ``SupportCalendar.add_open_hours``, a pure function of
the calendar, counted in open time only (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledger.policy import DEFAULT_CALENDAR, SupportCalendar

SAMARA = ZoneInfo("Europe/Samara")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

WEEKDAYS = DEFAULT_CALENDAR
WITH_HOLIDAY = SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Samara", "2026-12-07")
BERLIN_DAYS = SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Berlin")
BERLIN_ALL_WEEK = SupportCalendar.parse("Mon-Sun 00:00-24:00 Europe/Berlin")
BERLIN_WEEKEND = SupportCalendar.parse("Sat-Sun 01:00-04:00 Europe/Berlin")
ALWAYS = SupportCalendar.parse("24/7")


def s(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SAMARA)


def b(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


# 2026-12-04 is a Friday, 2026-03-29 the Sunday Berlin moves to summer time
# (02:00 CET -> 03:00 CEST), 2026-10-25 the Sunday it moves back.
LAPSES = [
    # the example: 1 open hour on Friday, 9 on Monday, 6 on Tuesday
    ("Friday 17:00, default calendar", WEEKDAYS, s(12, 4, 17), 16, s(12, 8, 15)),
    ("within one day", WEEKDAYS, s(12, 1, 9), 4, s(12, 1, 13)),
    ("exactly the rest of the day ends at closing", WEEKDAYS, s(12, 1, 9), 9, s(12, 1, 18)),
    ("one more hour is the next morning", WEEKDAYS, s(12, 1, 9), 10, s(12, 2, 10)),
    ("before opening counts from opening", WEEKDAYS, s(12, 1, 6), 2, s(12, 1, 11)),
    ("after closing counts from the next opening", WEEKDAYS, s(12, 1, 20), 2, s(12, 2, 11)),
    ("from a Saturday", WEEKDAYS, s(12, 5, 12), 3, s(12, 7, 12)),
    ("a holiday Monday is skipped", WITH_HOLIDAY, s(12, 4, 17), 16, s(12, 9, 15)),
    ("zero hours while open is now", WEEKDAYS, s(12, 1, 12, 30), 0, s(12, 1, 12, 30)),
    ("zero hours while closed is the next opening", WEEKDAYS, s(12, 5, 12), 0, s(12, 7, 9)),
    ("Berlin across the spring change", BERLIN_DAYS, b(3, 27, 17), 16, b(3, 31, 15)),
    ("Berlin across the autumn change", BERLIN_DAYS, b(10, 23, 17), 16, b(10, 27, 15)),
    # a 23-hour day: 24 open hours from Saturday noon end at 13:00 on Sunday
    ("open all week, the short day", BERLIN_ALL_WEEK, b(3, 28, 12), 24, b(3, 29, 13)),
    # a 25-hour day: 24 open hours from Saturday noon end at 11:00 on Sunday
    ("open all week, the long day", BERLIN_ALL_WEEK, b(10, 24, 12), 24, b(10, 25, 11)),
    # Sunday 01:00-04:00 wall time is two real hours on the short day: 3 + 2
    ("a period shortened by the shift", BERLIN_WEEKEND, b(3, 28, 1), 5, b(3, 29, 4)),
    ("one more hour is the next week end", BERLIN_WEEKEND, b(3, 28, 1), 6, b(4, 4, 2)),
    (
        "24/7 counts every hour",
        ALWAYS,
        datetime(2026, 12, 4, 17, tzinfo=UTC),
        16,
        datetime(2026, 12, 5, 9, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(
    ("calendar", "start", "hours", "lapses_at"),
    [case[1:] for case in LAPSES],
    ids=[case[0] for case in LAPSES],
)
def test_a_hold_lapses_after_its_open_hours(
    calendar: SupportCalendar, start: datetime, hours: int, lapses_at: datetime
) -> None:
    result = calendar.add_open_hours(start, hours)
    assert result == lapses_at
    assert result.utcoffset() is not None


def test_the_lapse_is_in_the_calendars_zone_whatever_the_zone_of_the_start() -> None:
    start = s(12, 4, 17).astimezone(NEW_YORK)
    result = WEEKDAYS.add_open_hours(start, 16)
    assert result == s(12, 8, 15)
    assert result.tzinfo == SAMARA


def test_every_lapse_of_open_hours_is_open_time_and_later() -> None:
    start = s(12, 4, 17)
    previous = start
    for hours in range(1, 60):
        lapses_at = WEEKDAYS.add_open_hours(start, hours)
        assert lapses_at > previous
        assert WEEKDAYS.is_open(lapses_at - timedelta(microseconds=1))
        previous = lapses_at


@pytest.mark.parametrize("hours", [-1, True, 1.5])
def test_hours_are_whole_and_not_negative(hours: object) -> None:
    with pytest.raises(ValueError, match="hours"):
        WEEKDAYS.add_open_hours(s(12, 1, 9), hours)  # type: ignore[arg-type]


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        WEEKDAYS.add_open_hours(datetime(2026, 12, 1, 9), 1)
