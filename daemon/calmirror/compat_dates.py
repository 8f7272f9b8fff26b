"""Compatible copies of events that mix dates and times, or name a zone with blanks around it,
which Radicale cannot walk as busy time reads them.

- **A DATE DTEND, RDATE or EXDATE beside a timed DTSTART** (`DTSTART:20261201T100000Z`,
  `RDATE;VALUE=DATE:20261220`): Radicale refuses a date DTEND ("cannot be stored") and its
  time-range walk fails on a date RDATE or EXDATE (a date compared with a time), so the event
  was withheld or its occurrences unknown to clients. Busy time reads a DTEND or RDATE date as
  that day's midnight and an EXDATE date as every occurrence on that day; the copy writes them
  in DTSTART's own form: midnight for DTEND and RDATE, DTSTART's time of day for EXDATE.
- **A date DTSTART beside a timed DTEND** (not recurring): Radicale refuses it; busy time
  reads the start as that day's midnight, and the copy writes it so, in DTEND's form.
- **An end before its start** (a DTEND before DTSTART, a negative DURATION; not recurring):
  busy time counts the span between them, Radicale shows the event at DTSTART; the copy
  writes the span forwards (`backwards_spans`).
- **A rule whose UNTIL lies before DTSTART** (a series cut back to before its own start):
  Radicale refuses the object; busy time counts DTSTART alone (RFC 5545: DTSTART is always
  an occurrence), and the copy drops the rule (`rules_ending_before_start`).
- **A TZID parameter with blanks around the name** (`TZID=Europe/Berlin `): busy time reads the
  zone it names, Radicale finds no such zone and reads the time as floating; the copy trims it.
"""

from __future__ import annotations

import datetime as dt
import re

from icalendar.prop import vDuration

from calmirror.compat_bounds import start_of
from calmirror.ical_lines import TZID_PARAM, Event, Resource, name_of, params_of, split, value_of

DATES_AS_TIMES = "date values beside a timed DTSTART written as times"
TRIMMED_TZIDS = "blanks around TZID names trimmed"
BACKWARDS = "an end before its start written forwards"
ENDED_RULES = "a rule ending before DTSTART dropped (DTSTART alone)"

_DATE = re.compile(r"\d{8}")
_DATE_START = re.compile(r"^DTSTART(?:;[^:\r\n]*)?:\d{8}\r?$", re.MULTILINE | re.IGNORECASE)
_TIMED_END = re.compile(r"^DTEND(?:;[^:\r\n]*)?:\d{8}T", re.MULTILINE | re.IGNORECASE)
_TIMED_START = re.compile(r"^DTSTART(?:;[^:\r\n]*)?:\d{8}T", re.MULTILINE | re.IGNORECASE)
_DATE_VALUES = re.compile(r"^(?:DTEND|RDATE|EXDATE)(?:;[^:\r\n]*)?:\d{8}(?:,\d{8})*\r?$", re.MULTILINE | re.IGNORECASE)
_NEGATIVE = re.compile(r"^DURATION(?:;[^:\r\n]*)?:-", re.MULTILINE | re.IGNORECASE)
_START_VALUE = re.compile(r"^DTSTART(?:;[^:\r\n]*)?:([0-9TZ]+)\r?$", re.MULTILINE | re.IGNORECASE)
_END_VALUE = re.compile(r"^DTEND(?:;[^:\r\n]*)?:([0-9TZ]+)\r?$", re.MULTILINE | re.IGNORECASE)
_BLANK_TZID = re.compile(r';TZID=(?:"\s[^"]*"|"[^"]*\s"|\s[^;:\r\n]*|[^;:\r\n"]*\s(?=[;:]))', re.IGNORECASE)


def needs_date_fixes(text: str) -> bool:
    """Cheap first look: a timed DTSTART beside a date DTEND, RDATE or EXDATE (a VTIMEZONE's
    timed DTSTART can make this say yes for nothing), or a TZID name with blanks around it."""
    return (
        (_TIMED_START.search(text) is not None and _DATE_VALUES.search(text) is not None)
        or (_DATE_START.search(text) is not None and _TIMED_END.search(text) is not None)
        or _BLANK_TZID.search(text) is not None
        or _NEGATIVE.search(text) is not None
        or _ends_early(text)
    )


def _ends_early(text: str) -> bool:
    """A DTEND whose value sorts before DTSTART's (same length: same form, a cheap look)."""
    first = max(text.upper().find("BEGIN:VEVENT"), 0)  # (past a VTIMEZONE's own DTSTARTs)
    start, end = _START_VALUE.search(text, first), _END_VALUE.search(text, first)
    return (
        start is not None
        and end is not None
        and len(start.group(1)) == len(end.group(1))
        and end.group(1) < start.group(1)
    )


def trim_tzids(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        for index, line in enumerate(event.lines):
            head, value = split(line)

            def trimmed(match: re.Match[str]) -> str:
                raw = match.group(2)
                name = raw.strip('"')
                if name == name.strip():
                    return match.group(0)
                return match.group(1) + (f'"{name.strip()}"' if raw.startswith('"') else name.strip())

            new = TZID_PARAM.sub(trimmed, head)
            if new != head:
                event.lines[index] = new + ":" + value
                changed = True
    return changed


def dates_as_times(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        start = event.get("DTSTART")
        if start is None:
            continue
        try:
            at, form, _ = start_of(resource, start)
        except (ValueError, OverflowError):
            continue
        if form == "date":
            changed = _start_as_time(resource, event) or changed
            continue
        time_of_day = at.strftime("%H%M%S")
        params = re.sub(r";VALUE=[^;:]*", "", params_of(start), flags=re.IGNORECASE)
        for index, line in event.top():
            name = name_of(line)
            values = [v.strip() for v in value_of(line).split(",")]
            if name not in ("DTEND", "RDATE", "EXDATE") or not all(_DATE.fullmatch(v) for v in values):
                continue
            if "VALUE=PERIOD" in params_of(line).upper():
                continue
            clock = time_of_day if name == "EXDATE" else "000000"
            times = [f"{v}T{clock}" + ("Z" if form == "utc" else "") for v in values]
            event.lines[index] = name + params + ":" + ",".join(times)
            changed = True
    return changed


def _start_as_time(resource: Resource, event: Event) -> bool:
    """A date DTSTART beside a timed DTEND: DTSTART as that day's midnight in DTEND's form
    (busy time reads it so; Radicale refuses the mix)."""
    start, end = event.get("DTSTART"), event.get("DTEND")
    if start is None or end is None or event.get("RRULE") is not None:
        return False
    try:
        _, form, _ = start_of(resource, end)
    except (ValueError, OverflowError):
        return False
    if form == "date" or not _DATE.fullmatch(value_of(start).strip()):
        return False
    params = re.sub(r";VALUE=[^;:]*", "", params_of(end), flags=re.IGNORECASE)
    moment = value_of(start).strip() + "T000000" + ("Z" if form == "utc" else "")
    event.lines = [("DTSTART" + params + ":" + moment) if line is start else line for line in event.lines]
    return True


def backwards_spans(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        if event.get("RRULE") or event.get("RDATE") or event.get("RECURRENCE-ID"):
            continue
        start, end, duration = event.get("DTSTART"), event.get("DTEND"), event.get("DURATION")
        if start is None:
            continue
        try:
            at, form, _ = start_of(resource, start)
            if end is not None and params_of(end) == params_of(start):
                until, _, _ = start_of(resource, end)
                if until < at:
                    swapped = {id(start): "DTSTART" + params_of(end) + ":" + value_of(end).strip()}
                    swapped[id(end)] = "DTEND" + params_of(start) + ":" + value_of(start).strip()
                    event.lines = [swapped.get(id(line), line) for line in event.lines]
                    changed = True
            elif end is None and duration is not None and value_of(duration).strip().startswith("-"):
                length = vDuration.from_ical(value_of(duration).strip()[1:])
                earlier = at - length
                stamp = earlier.strftime("%Y%m%d") if form == "date" else earlier.strftime("%Y%m%dT%H%M%S")
                moved = "DTSTART" + params_of(start) + ":" + stamp + ("Z" if form == "utc" else "")
                forwards = "DURATION" + params_of(duration) + ":" + value_of(duration).strip()[1:]
                event.lines = [
                    moved if line is start else forwards if line is duration else line for line in event.lines
                ]
                changed = True
        except (ValueError, OverflowError):
            continue
    return changed


def rules_ending_before_start(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        start = event.get("DTSTART")
        if start is None or event.get("RRULE") is None:
            continue
        try:
            at, form, tz = start_of(resource, start)
        except (ValueError, OverflowError):
            continue
        drop = {index for index, line in event.top() if name_of(line) == "RRULE" and _ends_before(line, at, form, tz)}
        if drop:
            event.lines = [line for index, line in enumerate(event.lines) if index not in drop]
            changed = True
    return changed


def _ends_before(rule: str, at: dt.datetime, form: str, tz: dt.tzinfo | None) -> bool:
    until = next((p.partition("=")[2].strip() for p in value_of(rule).split(";") if p.upper().startswith("UNTIL=")), "")
    try:
        if len(until) == 8:
            return dt.datetime.strptime(until, "%Y%m%d").date() < at.date()
        moment = dt.datetime.strptime(until.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return False
    if form == "date":
        return moment.date() < at.date()
    if until.upper().endswith("Z") and tz is not None:
        return moment.replace(tzinfo=dt.UTC) < at.replace(tzinfo=tz)
    return moment < at  # both wall times (or a floating start)
