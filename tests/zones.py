"""Time zones for tests whose outcome hangs on the contact's local hour (campaign quiet hours are
21:00-08:00 in the contact's zone): pick a zone by the hour it has now, whatever the hour the tests
run at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

DAYTIME = range(9, 20)
NIGHT = [*range(21, 24), *range(7)]


def zone_where(hours: range | list[int], now: datetime | None = None) -> str:
    """A fixed-offset IANA zone whose local hour is in `hours` now and for the next ten minutes."""
    now = now or datetime.now(UTC)
    for offset in range(-12, 15):
        zone = "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}")  # Etc/GMT-3 is UTC+3
        local = [(now + timedelta(minutes=m)).astimezone(ZoneInfo(zone)).hour for m in (0, 10)]
        if all(hour in hours for hour in local):
            return zone
    raise AssertionError(f"no zone has hours {hours} now")
