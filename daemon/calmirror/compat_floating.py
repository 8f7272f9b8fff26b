"""Compatible copies of events with floating times (`DTSTART:20261214T100000`, no TZID, no Z).

RFC 5545 floating times (and times whose TZID nothing places: no VTIMEZONE of that name, no
IANA or Windows zone) mean the same wall time wherever the reader is, and RFC 4791 9.9
compares them in the calendar's CALDAV:calendar-timezone. Busy time reads them in the
configured zone (`[availability] timezone`). Radicale knows no zone for a collection and reads
them as UTC in its time-range queries, its free-busy answer and `expand` (and the local
range index, which records Radicale's own walk), so with any zone but UTC a client of the
mirror found them hours away from where busy time has them. The copy binds each floating
date-time of a VEVENT to the configured zone (`TZID=<zone>`; an UNTIL beside it written in UTC,
as RFC 5545 asks of a zoned rule), which is how busy time reads it: every reader then agrees.
Dates (all-day events) have no time to bind; Radicale reads them as UTC days, busy time as
days in the configured zone (README, "Floating times").

The zone a copy was bound to is in its reason (`bound_to`), so a change of the configured zone
derives such copies again (`mirror._rederive_due`).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from calmirror.availability import zones
from calmirror.ical_lines import TZID_PARAM, Event, Resource, name_of, params_of, split, value_of

FLOATING = "floating times bound to the configured zone"

_DATED = ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE")
_DATE_TIME = re.compile(r"\d{8}T\d{6}")
_FLOATING_VALUE = re.compile(r"\d{8}T\d{6}(?![\dZz])")
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\r?$.*?^END:VTIMEZONE\r?$", re.MULTILINE | re.DOTALL | re.IGNORECASE)
_TZID_LINE = re.compile(r"^TZID:(.*?)\r?$", re.MULTILINE)
_UNTIL = re.compile(r"(UNTIL=)(\d{8}T\d{6})(?=;|$)", re.IGNORECASE)


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/Zulu", "Zulu", "Universal"})


def binds(zone: str) -> bool:
    """Whether floating times need binding in `zone`: not where Radicale reads them already."""
    return bool(zone) and zone not in _UTC_NAMES


def bound_to(zone: str) -> str:
    return f"{FLOATING} ({zone})"


def has_floating_times(text: str) -> bool:
    """Cheap first look: a floating date-time outside any VTIMEZONE (whose own DTSTARTs are
    always floating), or a TZID nothing places. Run on every mirrored object when the zone is
    not UTC, so it looks at the events only (past the first VEVENT, where zones usually end)."""
    first = text.find("BEGIN:VEVENT")
    events = text[first:] if first >= 0 else text
    if "BEGIN:VTIMEZONE" in events:  # a zone after an event: rare, look without the zones
        events = _VTIMEZONE.sub("", events)
    for line in events.split("\n"):
        if line.startswith(_DATED):
            head, _, value = line.partition(":")  # (a quoted colon in a TZID: zoned anyway)
            if "TZID=" not in head.upper() and _FLOATING_VALUE.search(value) is not None:
                return True
    if "TZID=" not in events and "tzid=" not in events.lower():
        return False
    used = {name.strip('"').strip() for _, name in TZID_PARAM.findall(events)}
    unplaced = {name for name in used if not zones.iana_name(name) and not zones.windows_name(name)}
    return bool(unplaced) and bool(unplaced - {value.strip() for value in _TZID_LINE.findall(text)})


def _floating(line: str, defined: frozenset[str] = frozenset()) -> bool:
    """A date-time with no zone, or with a TZID nothing places (no VTIMEZONE of that name,
    neither an IANA nor a Windows name): busy time reads both in the configured zone."""
    found = TZID_PARAM.search(params_of(line))
    if found is not None:
        name = found.group(2).strip('"').strip()
        if name in defined or zones.iana_name(name) or zones.windows_name(name):
            return False
    values = re.split(r"[,/]", value_of(line).strip())
    stamps = [v.strip() for v in values if _DATE_TIME.match(v.strip())]
    return bool(stamps) and not any(v.upper().endswith("Z") for v in stamps)


def bind_floating(resource: Resource, zone: str) -> bool:
    """Every floating date-time of the VEVENTs of each UID whose series starts floating (its
    master's DTSTART, or each override's own without a master) bound to `zone` (an IANA name).
    A series that starts zoned keeps its floating values as they are: readers match them
    against the zoned ones in ways of their own, and binding would change which match."""
    tz = zoneinfo.ZoneInfo(zone)
    defined = frozenset(value_of(line).strip() for b in resource.timezones for line in b if name_of(line) == "TZID")
    floating_uids = {
        value_of(event.get("UID") or "UID:").strip()
        for event in resource.events
        if (event.get("RECURRENCE-ID") is None or not _has_master(resource, event))
        and _floating(event.get("DTSTART") or "DTSTART:", defined)
    }
    changed = False
    for event in resource.events:
        if value_of(event.get("UID") or "UID:").strip() not in floating_uids:
            continue
        for index, line in event.top():
            if name_of(line) in _DATED and _floating(line, defined):
                head, value = split(line)
                head = TZID_PARAM.sub("", head)  # a name nothing places, if any
                event.lines[index] = f"{head};TZID={zone}:{value}"
                changed = True
            elif name_of(line) == "RRULE":
                event.lines[index] = _UNTIL.sub(lambda m: m.group(1) + _utc(m.group(2), tz), line)
    return changed


def _has_master(resource: Resource, event: Event) -> bool:
    uid = value_of(event.get("UID") or "UID:").strip()
    return any(
        other.get("RECURRENCE-ID") is None and value_of(other.get("UID") or "UID:").strip() == uid
        for other in resource.events
    )


def _utc(stamp: str, tz: dt.tzinfo) -> str:
    wall = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
    return wall.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
