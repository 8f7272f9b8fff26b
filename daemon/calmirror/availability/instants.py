"""UTC instants of iCalendar start and end values, exact or safely bounded.

Compiling and expanding both need to place an event's own times (aware, floating or
all-day) on one UTC axis: exactly when the query's zone is known, and as a bound that
holds in any zone when it is not (a compiled calendar serves queries in every zone).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dateutil import tz as dateutil_tz

Time = dt.date | dt.datetime
UTC = dt.UTC

_MARGIN = dt.timedelta(days=2)  # covers any UTC offset (-12..+14) when bounding floating times
NEVER = dt.datetime.min.replace(tzinfo=UTC)


def _aware_to_utc(value: dt.datetime) -> dt.datetime:
    """RFC 5545 (3.3.5) reads a local time that a DST change skips with the offset before the
    gap (02:15 on the spring-forward day in Berlin is 01:15 UTC), as zoneinfo does. The zones
    icalendar builds from an object's own VTIMEZONE (Outlook's "Customized Time Zone") are
    dateutil's, which take the offset after it: an hour early, and an occurrence ending in
    the gap ended before it started and was dropped. Such a time is moved past the gap first."""
    zone = value.tzinfo
    if isinstance(zone, ZoneInfo | dt.timezone):
        return value.astimezone(UTC)
    return dateutil_tz.resolve_imaginary(value).astimezone(UTC)


def to_utc(value: Time, tz: dt.tzinfo) -> dt.datetime:
    """Exact UTC instant: aware values as given, floating and all-day in the configured zone."""
    if isinstance(value, dt.datetime):
        return _aware_to_utc(value if value.tzinfo is not None else value.replace(tzinfo=tz))
    return _aware_to_utc(dt.datetime(value.year, value.month, value.day, tzinfo=tz))


def bound(value: Time, upper: bool) -> dt.datetime:
    """A UTC instant certainly before (or after) `value`, whatever zone floats it."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return _aware_to_utc(value)
    naive = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    try:
        return naive.replace(tzinfo=UTC) + (_MARGIN if upper else -_MARGIN)
    except OverflowError:  # within two days of year 1 or 9999: the end of time will do
        return dt.datetime.max.replace(tzinfo=UTC) if upper else NEVER


def wall(value: Time) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime(value.year, value.month, value.day)
