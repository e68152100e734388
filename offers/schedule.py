"""When an offer may be pushed: its validity dates, the store's opening hours and quiet hours.

Validity dates are instants (UTC). Opening and quiet hours are wall-clock times in the store's time
zone, so "09:00" means nine on the shop floor whether the clocks changed last night or not: every
check converts the UTC instant to local time with ``zoneinfo`` and compares the local clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

# Weekday keys in ``date.weekday()`` order; opening hours are given per key ("mon": ["09:00", ...]).
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES: dict[str, str] = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}

# Zero-padded 24-hour "HH:MM", the one shape a manager types and a reason prints back.
_CLOCK_SHAPE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)", re.ASCII)

# An evaluation that is refused: (outcome, reason sentence for the decision log).
Refusal = tuple[str, str]


class InvalidSchedule(ValueError):
    """Opening or quiet hours a manager wrote that cannot be understood."""


def parse_clock(text: object, field: str) -> time:
    """A local wall-clock time from "HH:MM"; ``field`` names where it came from in the error."""
    if not isinstance(text, str) or not _CLOCK_SHAPE.fullmatch(text):
        raise InvalidSchedule(f"{field}: {text!r} is not a time like '09:30' (24-hour HH:MM)")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def parse_store_hours(data: object) -> dict[str, tuple[time, time]]:
    """Opening hours per weekday: {"mon": ["09:00", "21:00"], ...}; a day left out is closed."""
    if not isinstance(data, dict):
        raise InvalidSchedule("store_hours must map weekdays (mon … sun) to [opens, closes]")
    hours: dict[str, tuple[time, time]] = {}
    for day, span in data.items():
        if day not in WEEKDAYS:
            raise InvalidSchedule(f"store_hours: unknown weekday {day!r}; use one of mon … sun")
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise InvalidSchedule(
                f"store_hours.{day} must be [opens, closes], e.g. ['09:00', '21:00']"
            )
        opens = parse_clock(span[0], f"store_hours.{day}")
        closes = parse_clock(span[1], f"store_hours.{day}")
        if closes <= opens:
            raise InvalidSchedule(f"store_hours.{day}: the store must close after it opens")
        hours[day] = (opens, closes)
    return hours


def parse_quiet_hours(data: object) -> tuple[time, time]:
    """Quiet hours [start, end]; an end earlier than the start runs across midnight."""
    if not isinstance(data, list | tuple) or len(data) != 2:
        raise InvalidSchedule("quiet_hours must be [start, end], e.g. ['22:00', '08:00']")
    start = parse_clock(data[0], "quiet_hours")
    end = parse_clock(data[1], "quiet_hours")
    if start == end:
        raise InvalidSchedule("quiet_hours: start and end are the same time")
    return start, end


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """True inside [start, end); when end < start the span wraps through midnight."""
    if start < end:
        return start <= local < end
    return local >= start or local < end


@dataclass(frozen=True)
class Schedule:
    """Everything about *when* one offer may go out."""

    valid_from: datetime
    valid_to: datetime
    store_hours: dict[str, tuple[time, time]] | None = None  # None: no opening-hours limit
    quiet_hours: tuple[time, time] | None = None  # None: no quiet hours


def _local_text(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def check_schedule(
    schedule: Schedule, at: datetime, store_timezone: str | ZoneInfo
) -> Refusal | None:
    """Why an offer may not go out at the UTC instant ``at``, or None when it may.

    Checked in order: validity dates (``out_of_schedule``), opening hours for the local weekday
    (``out_of_schedule``), then quiet hours (``quiet_hours``); the first refusal wins.
    """
    if at.tzinfo is None:
        raise ValueError("check_schedule needs a timezone-aware time, not a naive one")
    zone = store_timezone if isinstance(store_timezone, ZoneInfo) else ZoneInfo(store_timezone)
    if at < schedule.valid_from:
        return "out_of_schedule", f"the offer starts at {_local_text(schedule.valid_from, zone)}"
    if at >= schedule.valid_to:
        return "out_of_schedule", f"the offer ended at {_local_text(schedule.valid_to, zone)}"
    local = at.astimezone(zone)
    clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
    if schedule.store_hours is not None:
        day = WEEKDAYS[local.weekday()]
        span = schedule.store_hours.get(day)
        if span is None:
            return "out_of_schedule", f"the store is closed on {WEEKDAY_NAMES[day]}s"
        opens, closes = span
        if clock < opens:
            return "out_of_schedule", f"the store opens at {opens:%H:%M}"
        if clock >= closes:
            return "out_of_schedule", f"the store closed at {closes:%H:%M}"
    if schedule.quiet_hours is not None:
        start, end = schedule.quiet_hours
        if in_quiet_hours(clock, start, end):
            return "quiet_hours", f"quiet hours from {start:%H:%M} to {end:%H:%M}"
    return None
