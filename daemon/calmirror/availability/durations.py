"""How long an occurrence lasts, as RFC 5545 counts it (recurring-ical-events counts in
wall-clock time).

RFC 5545 §3.3.6: a duration in days and weeks is nominal (a day is a calendar day, 23 or 25
hours across a DST change), one in hours, minutes and seconds is exact (elapsed time);
§3.8.5.3: the span from DTSTART to DTEND applies to every occurrence as that exact duration.
So PT1H from 01:30 on the night the clocks go back ends at 01:30 the second time, not at
02:30, and PT24H from noon the day before ends at 11:00, where P1D ends at noon.

icalendar reads PT24H and P1D into the same timedelta, so `parse_calendar` marks a DURATION
whose exact part is a day or more with its exact seconds (`mark_exact_durations`) first.
"""

from __future__ import annotations

import datetime as dt
import re

import icalendar

from calmirror.availability.instants import Time

DST_SLACK = dt.timedelta(hours=3)  # how far an exact end may lie past the library's wall-clock one
EXACT_PARAM = "X-CALMIRROR-EXACT-SECONDS"
_UTC = dt.UTC
_DURATION_LINE = re.compile(
    r"^(DURATION)((?:;[^:\r\n]*)?):([+-]?P[0-9WD]*T[0-9HMS]+)(\r?)$", re.MULTILINE | re.IGNORECASE
)
_TIME_PART = re.compile(r"(\d+)([HMS])", re.IGNORECASE)
_UNIT = {"H": 3600, "M": 60, "S": 1}

Length = tuple[dt.timedelta, dt.timedelta]  # (nominal days, exact rest) of one occurrence


def mark_exact_durations(text: str) -> str:
    """`text` with each DURATION whose hours, minutes and seconds make a day or more (PT24H)
    carrying its exact seconds as a parameter; other text is returned as it is."""
    if "T" not in text or "DURATION" not in text.upper():
        return text

    def mark(match: re.Match[str]) -> str:
        seconds = sum(int(n) * _UNIT[unit.upper()] for n, unit in _TIME_PART.findall(match.group(3).split("T", 1)[1]))
        if seconds < 86400:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)};{EXACT_PARAM}={seconds}:{match.group(3)}{match.group(4)}"

    return _DURATION_LINE.sub(mark, text)


def length_of(component: icalendar.Component) -> Length | None:
    """How long each occurrence of a zoned event lasts, or None when the library's wall-clock
    arithmetic is already right (dates, floating or UTC times)."""
    start = component.get("DTSTART")
    value = getattr(start, "dt", None)
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        return None
    end = component.get("DTEND")
    if end is not None:
        until = getattr(end, "dt", None)
        if not isinstance(until, dt.datetime) or until.tzinfo is None:
            return None
        exact = until.astimezone(_UTC) - value.astimezone(_UTC)
        return (dt.timedelta(0), exact) if exact >= dt.timedelta(0) else None
    prop = component.get("DURATION")
    duration = getattr(prop, "dt", None)
    if not isinstance(duration, dt.timedelta) or duration < dt.timedelta(0):
        return None
    marked = getattr(prop, "params", {}).get(EXACT_PARAM)
    if marked is not None and str(marked).isdigit():
        exact = dt.timedelta(seconds=int(str(marked)))
        return duration - exact, exact
    days = dt.timedelta(days=duration.days)
    return days, duration - days


def rfc_end(length: Length | None, duration: dt.timedelta, start: Time, end: Time) -> Time:
    """The end of one occurrence that starts at `start` and that the library ends at `end`
    (its start plus `duration` in wall-clock time). An end the library took from elsewhere
    (an RDATE period's own) is kept."""
    if length is None or not isinstance(start, dt.datetime) or start.tzinfo is None:
        return end
    if not isinstance(end, dt.datetime) or end != start + duration:
        return end
    days, exact = length
    nominal = start + days
    if not exact:
        return nominal
    if nominal.utcoffset() == end.utcoffset() and duration == days + exact:
        return end  # no change of offset on the way: wall-clock and elapsed time agree
    # (A first occurrence across a DST change makes the library's wall-clock duration differ
    # from the exact one every later occurrence lasts: DTSTART 00:00, DTEND 03:00 on the night
    # the clocks go back is four hours, also on the next day, where the library counts three.)
    return (nominal.astimezone(_UTC) + exact).astimezone(start.tzinfo)
