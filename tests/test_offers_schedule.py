"""When offers may go out: validity, opening hours per weekday, quiet hours, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from offers.schedule import (
    Schedule,
    check_schedule,
    in_quiet_hours,
    parse_clock,
    parse_quiet_hours,
    parse_store_hours,
)

MADRID = "Europe/Madrid"  # CET (UTC+1) in winter, CEST (UTC+2) from the last Sunday of March


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(
    store_hours: dict[str, list[str]] | None = None, quiet_hours: list[str] | None = None
) -> Schedule:
    return Schedule(
        valid_from=utc("2024-01-01T00:00:00"),
        valid_to=utc("2025-01-01T00:00:00"),
        store_hours=None if store_hours is None else parse_store_hours(store_hours),
        quiet_hours=None if quiet_hours is None else parse_quiet_hours(quiet_hours),
    )


def test_validity_dates() -> None:
    plan = schedule()
    assert check_schedule(plan, utc("2023-12-31T22:59:00"), MADRID) == (
        "out_of_schedule",
        "the offer starts at 2024-01-01 01:00 (Europe/Madrid)",
    )
    assert check_schedule(plan, utc("2024-06-01T12:00:00"), MADRID) is None
    assert check_schedule(plan, utc("2025-01-01T00:00:00"), ZoneInfo(MADRID)) == (
        "out_of_schedule",
        "the offer ended at 2025-01-01 01:00 (Europe/Madrid)",
    )


NIGHT = ["22:00", "08:00"]


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        ("2024-06-10T19:59:00", False),  # 21:59 CEST
        ("2024-06-10T20:00:00", True),  # 22:00 CEST: quiet hours start
        ("2024-06-10T22:30:00", True),  # 00:30 the next day, across midnight
        ("2024-06-11T05:59:00", True),  # 07:59
        ("2024-06-11T06:00:00", False),  # 08:00: quiet hours end
    ],
)
def test_quiet_hours_across_midnight(instant: str, quiet: bool) -> None:
    result = check_schedule(schedule(quiet_hours=NIGHT), utc(instant), MADRID)
    if quiet:
        assert result == ("quiet_hours", "quiet hours from 22:00 to 08:00")
    else:
        assert result is None


@pytest.mark.parametrize(
    ("instant", "quiet", "why"),
    [
        # Spring forward, Sunday 2024-03-31: 02:00 CET becomes 03:00 CEST.
        ("2024-03-30T06:59:00", True, "Saturday 07:59 CET"),
        ("2024-03-30T07:00:00", False, "Saturday 08:00 CET"),
        ("2024-03-31T06:00:00", False, "Sunday 08:00 CEST: one UTC hour earlier than Saturday"),
        ("2024-03-31T05:59:00", True, "Sunday 07:59 CEST"),
        ("2024-03-31T01:30:00", True, "Sunday 03:30 CEST, just after the skipped hour"),
        # Fall back, Sunday 2024-10-27: 03:00 CEST becomes 02:00 CET.
        ("2024-10-26T06:00:00", False, "Saturday 08:00 CEST"),
        ("2024-10-27T06:00:00", True, "Sunday 07:00 CET: same UTC time is still quiet"),
        ("2024-10-27T07:00:00", False, "Sunday 08:00 CET"),
        ("2024-10-27T00:30:00", True, "Sunday 02:30 CEST, first pass of the repeated hour"),
        ("2024-10-27T01:30:00", True, "Sunday 02:30 CET, second pass of the repeated hour"),
        ("2024-10-26T19:59:00", False, "Saturday 21:59 CEST"),
        ("2024-10-27T20:59:00", False, "Sunday 21:59 CET"),
        ("2024-10-27T21:00:00", True, "Sunday 22:00 CET"),
    ],
)
def test_quiet_hours_follow_the_local_clock_across_dst(instant: str, quiet: bool, why: str) -> None:
    result = check_schedule(schedule(quiet_hours=NIGHT), utc(instant), MADRID)
    assert (result is not None and result[0] == "quiet_hours") is quiet, why


WEEK = {
    "mon": ["09:00", "21:00"],
    "tue": ["09:00", "21:00"],
    "wed": ["09:00", "21:00"],
    "thu": ["09:00", "21:00"],
    "fri": ["09:00", "22:00"],
    "sat": ["10:00", "14:00"],
}


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("2024-06-10T06:59:00", ("out_of_schedule", "the store opens at 09:00")),  # Mon 08:59
        ("2024-06-10T07:00:00", None),  # Monday 09:00 CEST
        ("2024-06-10T19:00:00", ("out_of_schedule", "the store closed at 21:00")),  # Mon 21:00
        ("2024-06-14T19:30:00", None),  # Friday 21:30: late opening
        ("2024-06-15T07:30:00", ("out_of_schedule", "the store opens at 10:00")),  # Sat 09:30
        ("2024-06-15T11:59:00", None),  # Saturday 13:59
        ("2024-06-16T10:00:00", ("out_of_schedule", "the store is closed on Sundays")),
        # The Monday after fall-back: 09:00 CET is 08:00 UTC, an hour later than in summer.
        ("2024-10-28T07:30:00", ("out_of_schedule", "the store opens at 09:00")),
        ("2024-10-28T08:00:00", None),
        # The Saturday before spring-forward still opens at 10:00 CET = 09:00 UTC.
        ("2024-03-30T08:30:00", ("out_of_schedule", "the store opens at 10:00")),
        ("2024-03-30T09:00:00", None),
    ],
)
def test_opening_hours_per_weekday(instant: str, expected: tuple[str, str] | None) -> None:
    assert check_schedule(schedule(store_hours=WEEK), utc(instant), MADRID) == expected


def test_opening_hours_are_checked_before_quiet_hours() -> None:
    plan = schedule(store_hours={"mon": ["09:00", "21:00"]}, quiet_hours=["20:00", "09:30"])
    assert check_schedule(plan, utc("2024-06-10T06:30:00"), MADRID) == (
        "out_of_schedule",
        "the store opens at 09:00",
    )
    assert check_schedule(plan, utc("2024-06-10T07:15:00"), MADRID) == (
        "quiet_hours",
        "quiet hours from 20:00 to 09:30",
    )


def test_quiet_hours_within_one_day() -> None:
    start, end = parse_clock("13:00", "t"), parse_clock("15:00", "t")
    assert in_quiet_hours(parse_clock("14:00", "t"), start, end)
    assert not in_quiet_hours(parse_clock("15:00", "t"), start, end)
    assert not in_quiet_hours(parse_clock("12:59", "t"), start, end)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_schedule(schedule(), datetime(2024, 6, 1, 12), MADRID)
