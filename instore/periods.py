"""Store-local calendar days over UTC storage, for reports that count "per day".

Every table stores UTC ISO text; a manager reads days on the store's clock. A local day is not a
fixed 24 h shift of a UTC day once daylight saving time moves the clock (a day can last 23 or 25
hours), so reports ask each day for its own UTC bounds here and query ``ts >= start AND ts < stop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from instore.clock import to_iso


@dataclass(frozen=True)
class LocalPeriod:
    """The local days ``first_day`` to ``last_day`` (both included) in ``timezone``."""

    first_day: date
    last_day: date
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> list[date]:
        """Every day of the period, in order."""
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=n) for n in range(count)]

    def day_start(self, day: date) -> datetime:
        """Local midnight of ``day`` in UTC (or the first instant after, if midnight is skipped)."""
        return datetime.combine(day, time(), tzinfo=self.zone).astimezone(UTC)

    @property
    def start(self) -> datetime:
        return self.day_start(self.first_day)

    @property
    def stop(self) -> datetime:
        """The first instant after the period, in UTC."""
        return self.day_start(self.last_day + timedelta(days=1))

    def bounds(self) -> tuple[str, str]:
        """``(start, stop)`` as stored ISO text, for ``ts >= ? AND ts < ?``."""
        return to_iso(self.start), to_iso(self.stop)

    def single_days(self) -> list[LocalPeriod]:
        """Each day of the period as a period of its own."""
        return [LocalPeriod(day, day, self.timezone) for day in self.days]
