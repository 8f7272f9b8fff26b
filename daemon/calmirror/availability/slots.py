"""Free slots from busy intervals, and the parsing of what users type to ask for them.

Pure: busy intervals in, slots out, in UTC; the zone only decides where local days,
working hours and clock boundaries fall. Parsers raise `BadInput` (a `UserError`) with
one line saying what was wrong and what would be right, because these strings come
straight from `calmirror availability --from … --slots …`.

Slot placement (a choice, tested): inside each free stretch slots are laid back to back,
each starting on a local clock boundary of gcd(length, 1 hour): on the hour for 1h,
at :00/:30 for 30m and 1h30m, on quarter hours for 45m, every 5 minutes for 25m.
Boundaries rather than "whenever the gap starts" because a booking page offering 10:07
looks broken, and the gcd keeps 90-minute slots from being pushed to whole hours.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calmirror.availability.intervals import Interval, intersect
from calmirror.errors import UserError

UTC = dt.UTC

MAX_LENGTH = dt.timedelta(hours=24)
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_GROUPS = {
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
    "all": frozenset(range(7)),
    "daily": frozenset(range(7)),
}
_LENGTH = re.compile(r"^(?:(?P<h>\d+)\s*h(?:ours?|rs?)?)?\s*(?:(?P<m>\d+)\s*m(?:in(?:utes?)?)?)?$", re.I)
_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?$")


class BadInput(UserError):
    """A time, zone, length, hour range or weekday list that cannot be understood."""

    def __init__(self, what: str, value: str, problem: str) -> None:
        super().__init__(f"{what} {value!r}: {problem}")
        self.what = what
        self.value = value
        self.problem = problem


# --- parsing --------------------------------------------------------------------------------------


def parse_zone(text: str, what: str = "--tz") -> ZoneInfo:
    """An IANA zone; anything else (including path tricks ZoneInfo rejects) is one clear error."""
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(what, text, "unknown time zone; use an IANA name like Europe/Berlin or UTC") from None


def parse_time(text: str, zone: dt.tzinfo, what: str = "time") -> dt.datetime:
    """An instant from an ISO date or date-time, read in `zone` unless it carries an offset.

    A bare date is the start of that local day, so `--from 2026-12-01 --to 2026-12-08`
    is one week. A local time that does not exist (skipped by a DST change) is refused
    rather than silently moved; one that occurs twice means its first occurrence.
    """
    value = text.strip()
    hint = "use 2026-12-01, 2026-12-01T09:00 or 2026-12-01T09:00+01:00"
    if not value:
        raise BadInput(what, text, f"empty; {hint}")
    if "T" not in value.upper() and " " not in value and ":" not in value:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise BadInput(what, text, f"not a date; {hint}") from None
        return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    try:
        moment = dt.datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise BadInput(what, text, f"not a date and time; {hint}") from None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    local = moment.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        raise BadInput(what, text, f"does not exist in {zone} (clocks skip it); pick another time")
    return local.astimezone(UTC)


def parse_length(text: str, what: str = "--slots") -> dt.timedelta:
    """A slot length such as 30m, 1h, 1h30m or 90min."""
    match = _LENGTH.match(text.strip())
    if not text.strip() or match is None or not (match["h"] or match["m"]):
        raise BadInput(what, text, "use a length such as 30m, 1h or 1h30m")
    length = dt.timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
    if length <= dt.timedelta(0):
        raise BadInput(what, text, "a slot must be longer than zero")
    if length > MAX_LENGTH:
        raise BadInput(what, text, "a slot can be at most 24h")
    return length


def _clock(part: str, text: str, what: str) -> dt.time:
    match = _CLOCK.match(part.strip())
    hour, minute = (int(match["h"]), int(match["m"] or 0)) if match else (-1, -1)
    if (hour, minute) == (24, 0):
        return dt.time(0)
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise BadInput(what, text, "use hours such as 09:00-17:00")
    return dt.time(hour, minute)


def parse_within(text: str, what: str = "--within") -> tuple[dt.time, dt.time]:
    """Daily hours such as 09:00-17:00. An end at or before the start runs past midnight
    (22:00-06:00), and 24:00 means the end of the day."""
    pieces = re.split(r"\s*[-–—]\s*", text.strip())
    if len(pieces) != 2:
        raise BadInput(what, text, "use hours such as 09:00-17:00")
    start, end = _clock(pieces[0], text, what), _clock(pieces[1], text, what)
    return start, end


def parse_days(text: str, what: str = "--days") -> frozenset[int]:
    """Weekdays as numbers (Monday 0) from mon-fri, mon,wed,fri, fri-mon, weekdays or weekend."""
    found: set[int] = set()
    hint = "use weekdays such as mon-fri, mon,wed,fri or weekend"
    for token in text.lower().replace(" ", "").split(","):
        if token in _DAY_GROUPS:
            found |= _DAY_GROUPS[token]
            continue
        ends = token.split("-")
        if len(ends) > 2 or not all(ends):
            raise BadInput(what, text, hint)
        numbers = [_weekday(e, text, what, hint) for e in ends]
        first, last = numbers[0], numbers[-1]
        found.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    if not found:
        raise BadInput(what, text, hint)
    return frozenset(found)


def _weekday(name: str, text: str, what: str, hint: str) -> int:
    matches = [i for i, day in enumerate(_DAY_NAMES) if len(name) >= 2 and day.startswith(name)]
    if len(matches) != 1:
        raise BadInput(what, text, hint)
    return matches[0]


# --- finding slots ----------------------------------------------------------------------------------


def free_intervals(busy: Iterable[Interval], start: dt.datetime, end: dt.datetime) -> list[Interval]:
    """The complement of busy time inside [start, end)."""
    free: list[Interval] = []
    cursor = start
    for b_start, b_end in sorted(busy):
        if b_end <= cursor:
            continue
        if b_start >= end:
            break
        if b_start > cursor:
            free.append((cursor, b_start))
        cursor = max(cursor, b_end)
    if cursor < end:
        free.append((cursor, end))
    return free


def _local(day: dt.date, clock: dt.time, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def allowed_intervals(
    start: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo,
    within: tuple[dt.time, dt.time] | None,
    days: frozenset[int] | None,
) -> list[Interval]:
    """The parts of [start, end) on the chosen weekdays and within the daily hours, in UTC.

    A day's hours belong to the weekday they start on, so 22:00-06:00 on fri is
    Friday night into Saturday morning.
    """
    if within is None and days is None:
        return [(start, end)]
    opens, closes = within or (dt.time(0), dt.time(0))
    first = start.astimezone(zone).date() - dt.timedelta(days=1)
    last = end.astimezone(zone).date()
    out: list[Interval] = []
    day = first
    while day <= last:
        if days is None or day.weekday() in days:
            close_day = day + dt.timedelta(days=1) if closes <= opens else day
            a, b = max(_local(day, opens, zone), start), min(_local(close_day, closes, zone), end)
            if a < b:
                out.append((a, b))
        day += dt.timedelta(days=1)
    return out


def grid_step(length: dt.timedelta) -> dt.timedelta:
    """The clock boundary slots start on: gcd(length, 1 hour), at least one second."""
    seconds = math.gcd(int(length.total_seconds()), 3600)
    return dt.timedelta(seconds=max(seconds, 1))


def _align(moment: dt.datetime, step: dt.timedelta, zone: dt.tzinfo) -> dt.datetime:
    """The first instant at or after `moment` whose local wall time sits on the grid.

    Repeated because a DST change between the two instants (Lord Howe moves by 30
    minutes) can shift the local grid under us; two rounds always settle it.
    """
    step_us = step // dt.timedelta(microseconds=1)
    for _ in range(3):
        local = moment.astimezone(zone)
        wall_us = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond
        remainder = wall_us % step_us
        if remainder == 0:
            return moment
        moment += dt.timedelta(microseconds=step_us - remainder)
    return moment


def free_slots(
    busy: list[Interval],
    start: dt.datetime,
    end: dt.datetime,
    length: dt.timedelta,
    tz: dt.tzinfo,
    within: tuple[dt.time, dt.time] | None = None,
    days: frozenset[int] | None = None,
) -> list[Interval]:
    """Slots of `length` that are free, inside the window, hours and weekdays asked for.

    Busy intervals may be unsorted and overlapping. Results are UTC, sorted, disjoint.
    """
    if length <= dt.timedelta(0):
        raise ValueError("slot length must be positive")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    stretches = intersect(free_intervals(busy, start, end), allowed_intervals(start, end, tz, within, days))
    step = grid_step(length)
    slots: list[Interval] = []
    for lo, hi in stretches:
        moment = _align(lo, step, tz)
        while moment + length <= hi:
            slots.append((moment, moment + length))
            moment = _align(moment + length, step, tz)
    return slots
