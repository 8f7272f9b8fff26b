"""An oracle that knows busy time without calmirror's engine, for the differential tests.

It reads the canonical texts `differential_objects.write` makes (every TZID the IANA zone the
generator meant, no VTIMEZONE), expands them with recurring-ical-events (the library's own
expansion, not the engine's bounded walks, blocks or busy index) and applies the documented
busy rules itself: TRANSP, STATUS, the user's PARTSTAT, X-MICROSOFT-CDO-BUSYSTATUS, travel
time, all-day and floating values in the configured zone, and RFC 5545's lengths.

Note: importing calmirror's availability package patches the library's recurrence ids
(wall time and UTC kept apart, `availability.library_series`); the oracle runs in the same
process and so shares that correction, not the engine.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from tests.differential_objects import ALIAS, ME, UTC

# --- the oracle -------------------------------------------------------------------------------------


def _mine(line: object) -> bool:
    params = getattr(line, "params", {})
    found = {str(line).lower().removeprefix("mailto:"), str(params.get("EMAIL", "")).lower().removeprefix("mailto:")}
    return bool(found & {ME, ALIAS})


def _one(component: icalendar.Component, name: str) -> str:
    value = component.get(name)
    return str(value).strip().upper() if value is not None else ""


def busy_by_rules(component: icalendar.Component, tentative_busy: bool) -> bool:
    """The documented rules, read from one occurrence's component."""
    if _one(component, "TRANSP") == "TRANSPARENT" or _one(component, "STATUS") == "CANCELLED":
        return False
    if _one(component, "X-MICROSOFT-CDO-BUSYSTATUS") == "FREE":
        return False
    attendees = component.get("ATTENDEE", [])
    mine = [
        str(a.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        for a in (attendees if isinstance(attendees, list) else [attendees])
        if _mine(a)
    ]
    if "DECLINED" in mine and not set(mine) - {"DECLINED"}:
        return False
    tentative = _one(component, "STATUS") == "TENTATIVE" or _one(component, "X-MICROSOFT-CDO-BUSYSTATUS") == "TENTATIVE"
    if tentative or (mine and "TENTATIVE" in mine and not {"ACCEPTED"} & set(mine)):
        return tentative_busy
    return True


def _utc(value: dt.date | dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=tz).astimezone(UTC)
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)


# --- RFC 5545 lengths (the library adds DURATION and DTEND - DTSTART in wall-clock time) ---------


@dataclass(frozen=True)
class Length:
    """What one VEVENT says about how long its occurrences last."""

    start: dt.date | dt.datetime
    end: dt.date | dt.datetime | None  # DTEND
    days: int = 0  # DURATION's weeks and days: nominal (calendar days)
    seconds: int = 0  # DURATION's hours, minutes and seconds: exact (elapsed)
    periods: tuple[tuple[dt.datetime, str], ...] = ()  # RDATE;VALUE=PERIOD (UTC start, raw end)


_DUR = re.compile(r"^([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def _dur(raw: str) -> tuple[int, int]:
    """(nominal days, exact seconds) of an RFC 5545 duration, read from its text."""
    m = _DUR.match(raw.strip().upper())
    assert m is not None, raw
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups()[1:])
    return weeks * 7 + days, hours * 3600 + minutes * 60 + seconds


def _lengths(text: str, calendar: icalendar.Calendar) -> dict[object, Length]:
    """Each VEVENT's Length, by (UID, its RECURRENCE-ID in UTC or None for the master)."""
    raw_blocks = re.findall(r"^BEGIN:VEVENT\r?\n(.*?)^END:VEVENT", text.replace("\r\n ", ""), re.M | re.S)
    found: dict[object, Length] = {}
    for component, raw in zip(calendar.walk("VEVENT"), raw_blocks, strict=True):
        duration = re.search(r"^DURATION[^:\r\n]*:(.*?)\r?$", raw, re.M)
        days, seconds = _dur(duration.group(1)) if duration and "DTEND" not in component else (0, 0)
        rdates = component.get("RDATE", [])
        values = [v for r in (rdates if isinstance(rdates, list) else [rdates]) for v in r.dts]
        starts = [_utc(v.dt[0], UTC) for v in values if isinstance(v.dt, tuple)]  # periods, in order
        lines = re.findall(r"^RDATE[^:\r\n]*VALUE=PERIOD[^:\r\n]*:(.*?)\r?$", raw, re.M | re.I)
        ends = [p.split("/", 1)[1] for line in lines for p in line.split(",")]
        periods = list(zip(starts, ends, strict=True))
        rid = component.get("RECURRENCE-ID")
        key = (str(component["UID"]), _utc(rid.dt, UTC) if rid is not None else None)
        found[key] = Length(
            component["DTSTART"].dt,
            component["DTEND"].dt if "DTEND" in component else None,
            days,
            seconds,
            tuple(periods),
        )
    return found


def rfc_end(occurrence: icalendar.Component, lengths: dict[object, Length]) -> dt.date | dt.datetime | None:
    """The occurrence's end by RFC 5545, or None where the library's is right (dates,
    floating and UTC times, and events without a length)."""
    start = occurrence["DTSTART"].dt
    if not isinstance(start, dt.datetime) or start.tzinfo is None or start.utcoffset() == dt.timedelta(0):
        return None
    uid, rid = str(occurrence["UID"]), occurrence.get("RECURRENCE-ID")
    at = _utc(rid.dt, UTC) if rid is not None else None
    length = lengths.get((uid, at)) or lengths.get((uid, None))
    if length is None:
        return None
    if (uid, at) not in lengths:  # an occurrence of the master: perhaps one of its periods
        for begin, end in length.periods:
            if begin == start.astimezone(UTC):
                if end.upper().lstrip("+").startswith("P"):
                    days, seconds = _dur(end)
                    return (start + dt.timedelta(days=days)).astimezone(UTC) + dt.timedelta(seconds=seconds)
                return None  # an explicit end: the library's
    if length.end is not None:
        if not isinstance(length.end, dt.datetime) or not isinstance(length.start, dt.datetime):
            return None
        return start.astimezone(UTC) + (_utc(length.end, UTC) - _utc(length.start, UTC))
    if not (length.days or length.seconds):
        return None
    return (start + dt.timedelta(days=length.days)).astimezone(UTC) + dt.timedelta(seconds=length.seconds)


def busy(
    texts: list[str], start: dt.datetime, end: dt.datetime, tz: ZoneInfo, tentative_busy: bool
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Merged busy intervals in UTC over [start, end) of canonical texts."""
    found: list[tuple[dt.datetime, dt.datetime]] = []
    lo, hi = (start - dt.timedelta(days=3)).date(), (end + dt.timedelta(days=3)).date()
    for text in texts:
        calendar = icalendar.Calendar.from_ical(text)
        lengths = _lengths(text, calendar)
        for component in recurring_ical_events.of(calendar).between(lo, hi):
            if not busy_by_rules(component, tentative_busy):
                continue
            first = component["DTSTART"].dt
            a = _utc(first, tz)
            b = _utc(component["DTEND"].dt, tz) if "DTEND" in component else a
            exact = rfc_end(component, lengths)
            b = exact if exact is not None else b
            travel = component.get("X-APPLE-TRAVEL-DURATION")
            if travel is not None and isinstance(first, dt.datetime) and a < b:
                a -= travel.dt
            a, b = max(a, start), min(b, end)
            if a < b:
                found.append((a, b))
    return merge(found)


def merge(spans: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
