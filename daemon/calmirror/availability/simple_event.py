"""The busy-index entry of a plain one-event resource, read from its lines without icalendar.

Why: building the busy index parses every mirrored text with icalendar (about 0.5-0.8 ms
for an Apple-shaped single event: its VTIMEZONE, alarms and every other line become
objects) where the entry needs a handful of values. Most resources are one VEVENT without
recurrence, so `single_of` reads those values straight from the content lines and hands
the engine the same `Single` that `recurrence._compile_single` builds from icalendar's
parse; everything after that (travel time, busy rules, rows) is the engine's own code.

It is a fast path, never a second opinion: it returns None ("ask the full path") for
anything it does not read exactly as the full path does: more than one VEVENT, any
recurrence property, a component other than VTIMEZONE/STANDARD/DAYLIGHT/VALARM, a name
that is not an upper-case token, a duplicated property the entry reads, a parameter it
does not know on a date property, parameter text icalendar would decode (backslash,
percent, caret) or a value with more than one part where one is read, a TZID that is not
exactly an IANA name (custom and Windows zones are resolved per object by `zones`), an
X-WR-TIMEZONE or CALSCALE it would have to apply, date and time values of different kinds,
an end before the start, years outside `YEARS`. A property test compares it with the full
path over generated events and every corpus the tests hold.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Final

from icalendar.parser.content_line import NEWLINE, UFOLD
from icalendar.parser.property import unescape_backslash
from icalendar.prop import vDuration

from calmirror.availability.compiled import Single
from calmirror.availability.durations import EXACT_PARAM, Length, mark_exact_durations, rfc_end
from calmirror.availability.instants import Time, bound
from calmirror.availability.rules import EventInfo, normalise_address
from calmirror.availability.zones import iana_name

UTC = dt.UTC
YEARS: Final = (1900, 2400)  # dates outside are left to the full path (bounds near year 1 or 9999)

_NAME = re.compile(r"([A-Z0-9-]+)([;:])")
# One parameter: NAME=value[,value...], a value quoted or plain (no quote, comma, colon or semicolon).
_PARAM = re.compile(r';([A-Za-z0-9-]+)=((?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*)')
_VALUE_PART = re.compile(r'(?:^|,)("[^"]*"|[^",]*)')
_DATE = re.compile(r"(\d{4})(\d\d)(\d\d)")
_DATE_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(Z?)")
_DURATION = re.compile(r"P(?:\d+W|(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)")
_DAY = dt.timedelta(days=1)

_PARENTS: Final = {"VTIMEZONE": "VCALENDAR", "STANDARD": "VTIMEZONE", "DAYLIGHT": "VTIMEZONE", "VALARM": "VEVENT"}
_RECURRING: Final = frozenset({"RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID"})
_ONCE: Final = frozenset(
    {
        "DTSTART",
        "DTEND",
        "DURATION",
        "UID",
        "SUMMARY",
        "TRANSP",
        "STATUS",
        "X-MICROSOFT-CDO-BUSYSTATUS",
        "X-APPLE-TRAVEL-DURATION",
    }
)
_DATE_PARAMS: Final = frozenset({"TZID", "VALUE"})
_CALENDAR_PROPS: Final = frozenset({"VERSION", "PRODID", "CALSCALE", "METHOD"})  # text: never unreadable

Params = dict[str, list[str]]
Line = tuple[Params, str]  # (parameters, raw value)


class _Decline(Exception):
    """Something the fast path does not read exactly as the full path does."""


def single_of(text: str) -> Single | None:
    """The resource's one event as the engine compiles it, or None to take the full path."""
    try:
        return _single(text)
    except (_Decline, ValueError, OverflowError, KeyError):
        return None


def _single(text: str) -> Single:
    text = text.lstrip("\ufeff")
    if "\n\n" in text or "\n\r\n" in text:
        raise _Decline  # blank lines: icalendar's unfolding and the lenient reader treat them differently
    props = _event_lines(NEWLINE.split(UFOLD.sub("", mark_exact_durations(text))))
    uid = _text(props, "UID")
    if not uid:
        raise _Decline
    start_line, end_line = _one(props, "DTSTART"), _one(props, "DTEND")
    duration_line = _one(props, "DURATION")
    if start_line is None or (end_line is not None and duration_line is not None):
        raise _Decline
    start = _time(start_line)
    end_value = None if end_line is None else _time(end_line)
    duration = None if duration_line is None else _duration(duration_line)
    if end_value is not None:
        if _kind(end_value) != _kind(start):
            raise _Decline
        end = end_value
    elif duration is not None:
        if not isinstance(start, dt.datetime) and duration % _DAY:
            raise _Decline  # the library turns the date into a date-time
        end = start + duration
    else:
        end = start if isinstance(start, dt.datetime) else start + _DAY
    if start > end:  # same kinds, checked above
        raise _Decline  # the library swaps them
    end = rfc_end(_length(start, end_value, duration, duration_line), end - start, start, end)
    info = _info(props, uid)
    return Single(uid, info, start, end, bound(start, False) - info.travel, bound(end, True))


def _event_lines(lines: list[str]) -> dict[str, list[Line]]:
    """The VEVENT's lines by name, after checking the whole object's shape."""
    stack: list[str] = []
    events = calendars = 0
    props: dict[str, list[Line]] = {}
    calscale = 0
    for line in lines:
        if not line:
            continue
        match = _NAME.match(line)
        if match is None or "\r" in line:
            raise _Decline
        name = match.group(1)
        if name in ("BEGIN", "END"):
            component = line[len(name) + 1 :] if match.group(2) == ":" else ""
            _nest(stack, name == "BEGIN", component, calendars > 0)
            calendars += name == "BEGIN" and component == "VCALENDAR"
            events += name == "BEGIN" and component == "VEVENT"
            continue
        if not stack:
            raise _Decline  # a property outside every component, or after the end
        where = stack[-1]
        if where == "VCALENDAR":
            # A value icalendar cannot read fails the whole object here, except in X- properties.
            if name == "X-WR-TIMEZONE" or (name not in _CALENDAR_PROPS and not name.startswith("X-")):
                raise _Decline
            if name == "CALSCALE":
                calscale += 1
                if calscale > 1 or match.group(2) != ":" or line[9:].upper() != "GREGORIAN":
                    raise _Decline
        elif where == "VEVENT":
            if name in _RECURRING:
                raise _Decline
            if name in _ONCE or name == "ATTENDEE":
                found = props.setdefault(name, [])
                found.append(_split(line, match))
                if len(found) > 1 and name in _ONCE:
                    raise _Decline
    if stack or events != 1:
        raise _Decline
    return props


def _nest(stack: list[str], begin: bool, component: str, seen: bool) -> None:
    if begin:
        parent = _PARENTS.get(component)
        if component == "VCALENDAR":
            parent = None
            if seen:
                raise _Decline  # a second object in one resource: icalendar refuses the text
        elif component == "VEVENT":
            parent = "VCALENDAR"
        elif parent is None:
            raise _Decline  # another component (VTODO, X-...): the full path decides
        if (stack[-1] if stack else None) != parent or (component == "VCALENDAR" and stack):
            raise _Decline
        stack.append(component)
    elif not stack or stack.pop() != component:
        raise _Decline


def _split(line: str, match: re.Match[str]) -> Line:
    """(parameters, raw value) of a line; declines parameter text icalendar would rewrite."""
    pos = match.end()
    if match.group(2) == ":":
        return {}, line[pos:]
    params: Params = {}
    pos -= 1
    while True:
        found = _PARAM.match(line, pos)
        if found is None:
            raise _Decline
        key, raw = found.group(1).upper(), found.group(2)
        parts = _VALUE_PART.findall(raw)
        # icalendar strips blanks around delimiters and decodes backslash, percent and caret escapes
        if key in params or any(ch in raw for ch in "\\^%\t") or any(p != p.strip(" ") for p in parts):
            raise _Decline
        params[key] = [part.strip('"') for part in parts]
        pos = found.end()
        if line.startswith(":", pos):
            return params, line[pos + 1 :]
        if not line.startswith(";", pos):
            raise _Decline


def _one(props: dict[str, list[Line]], name: str) -> Line | None:
    found = props.get(name)
    return found[0] if found else None


def _param(params: Params, name: str) -> str | None:
    values = params.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise _Decline
    return values[0]


def _text(props: dict[str, list[Line]], name: str) -> str:
    line = _one(props, name)
    return "" if line is None else _unescaped(line[1])


def _unescaped(raw: str) -> str:
    """A text value as icalendar reads it (its backslash escapes undone)."""
    return str(unescape_backslash(raw)) if "\\" in raw else raw


def _time(line: Line) -> Time:
    params, raw = line
    if not _DATE_PARAMS.issuperset(params):
        raise _Decline
    value = _param(params, "VALUE")
    tzid = _param(params, "TZID")
    if value not in (None, "DATE", "DATE-TIME"):
        raise _Decline
    if (value is None or value == "DATE") and tzid is None and (date := _DATE.fullmatch(raw)):
        return _in_years(dt.date(int(date[1]), int(date[2]), int(date[3])))
    stamp = _DATE_TIME.fullmatch(raw)
    if stamp is None or value == "DATE":
        raise _Decline
    naive = dt.datetime(int(stamp[1]), int(stamp[2]), int(stamp[3]), int(stamp[4]), int(stamp[5]), int(stamp[6]))
    if stamp[7]:
        if tzid is not None:
            raise _Decline
        return _in_years(naive.replace(tzinfo=UTC))
    if tzid is None:
        return _in_years(naive)
    if iana_name(tzid) != tzid:  # exactly an IANA name: no vendor prefix, no blanks
        raise _Decline
    return _in_years(naive.replace(tzinfo=zoneinfo.ZoneInfo(tzid)))


def _in_years(value: Time) -> Time:
    if not YEARS[0] <= value.year < YEARS[1]:
        raise _Decline
    return value


def _kind(value: Time) -> str:
    if not isinstance(value, dt.datetime):
        return "date"
    return "floating" if value.tzinfo is None else "aware"


def _duration(line: Line) -> dt.timedelta:
    params, raw = line
    if not {EXACT_PARAM}.issuperset(params) or not _DURATION.fullmatch(raw) or raw == "P":
        raise _Decline
    found = vDuration.from_ical(raw)
    if not isinstance(found, dt.timedelta):
        raise _Decline
    return found


def _length(start: Time, end: Time | None, duration: dt.timedelta | None, line: Line | None) -> Length | None:
    """`durations.length_of` of the values read here."""
    if not isinstance(start, dt.datetime) or start.tzinfo is None or start.utcoffset() is None:
        return None
    if end is not None:
        assert isinstance(end, dt.datetime)  # same kind as the start
        exact = end.astimezone(UTC) - start.astimezone(UTC)
        return (dt.timedelta(0), exact) if exact >= dt.timedelta(0) else None
    if duration is None or line is None:
        return None
    marked = _param(line[0], EXACT_PARAM)
    if marked is not None and marked.isdigit():
        seconds = dt.timedelta(seconds=int(marked))
        return duration - seconds, seconds
    days = dt.timedelta(days=duration.days)
    return days, duration - days


def _travel(props: dict[str, list[Line]]) -> dt.timedelta:
    """`rules.travel_time`: a positive duration, else none."""
    line = _one(props, "X-APPLE-TRAVEL-DURATION")
    if line is None:
        return dt.timedelta(0)
    params, raw = line
    if not {"VALUE"}.issuperset(params) or _param(params, "VALUE") not in (None, "DURATION") or "\\" in raw:
        raise _Decline
    if raw != raw.strip():
        raise _Decline
    try:
        found = vDuration.from_ical(raw)
    except ValueError:
        return dt.timedelta(0)
    return found if isinstance(found, dt.timedelta) and found > dt.timedelta(0) else dt.timedelta(0)


def _info(props: dict[str, list[Line]], uid: str) -> EventInfo:
    """`rules.event_info` of the values read here."""
    transp = _text(props, "TRANSP").strip().upper()
    status = _text(props, "STATUS").strip().upper()
    ms_status = _text(props, "X-MICROSOFT-CDO-BUSYSTATUS").strip().upper()
    attendees: list[tuple[frozenset[str], str]] = []
    for params, raw in props.get("ATTENDEE", ()):
        addresses = {normalise_address(_unescaped(raw))}
        email = _param(params, "EMAIL")
        if email:
            addresses.add(normalise_address(email))
        partstat = _param(params, "PARTSTAT")
        attendees.append((frozenset(addresses), (partstat if partstat is not None else "NEEDS-ACTION").strip().upper()))
    return EventInfo(
        uid=uid,
        summary=_text(props, "SUMMARY"),
        free_by_itself=transp == "TRANSPARENT" or status == "CANCELLED" or ms_status == "FREE",
        tentative=status == "TENTATIVE" or ms_status == "TENTATIVE",
        attendees=tuple(attendees),
        travel=_travel(props),
        unavailable=ms_status == "OOF" and status != "TENTATIVE",
    )
