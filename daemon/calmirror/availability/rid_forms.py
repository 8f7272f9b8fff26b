"""An override of an all-day series whose RECURRENCE-ID is a midnight DATE-TIME, read as the
date it names.

RFC 5545 3.8.4.4 wants a RECURRENCE-ID of DTSTART's value type; Exchange and Outlook (O365)
write `RECURRENCE-ID;TZID=W. Europe Standard Time:20261229T000000` for an occurrence of a
`DTSTART;VALUE=DATE` series. No reader matches a time with a day: the override was an event
of its own and the occurrence it cancels or moves stayed (node-ical, Radicale, and busy time).
The midnight names the day in the organiser's zone, so it is read as `VALUE=DATE` of that
day, by busy time (`engine.parse_calendar`) and in the mirror's copy alike (`compat`).
"""

from __future__ import annotations

import re

from calmirror.ical_lines import Resource, params_of, value_of

MIDNIGHT_RIDS = "midnight RECURRENCE-IDs of an all-day series read as their dates"

_MIDNIGHT = re.compile(r"^(\d{8})T000000Z?$")


def may_have_midnight_rids(text: str) -> bool:
    """Cheap first look: an override at a midnight and a date DTSTART in one object."""
    return "RECURRENCE-ID" in text and "T000000" in text and "VALUE=DATE:" in text.upper()


def midnight_rids_as_dates(resource: Resource) -> bool:
    all_day = {
        value_of(event.get("UID") or "UID:").strip()
        for event in resource.events
        if event.get("RECURRENCE-ID") is None and _is_date(event.get("DTSTART"))
    }
    changed = False
    for event in resource.events:
        rid = event.get("RECURRENCE-ID")
        if rid is None or _is_date(rid) or value_of(event.get("UID") or "UID:").strip() not in all_day:
            continue
        midnight = _MIDNIGHT.match(value_of(rid).strip().upper())
        if midnight is None:
            continue
        kept = ";RANGE=THISANDFUTURE" if "RANGE=THISANDFUTURE" in params_of(rid).upper() else ""
        date = f"RECURRENCE-ID;VALUE=DATE{kept}:{midnight.group(1)}"
        event.lines = [date if line is rid else line for line in event.lines]
        changed = True
    return changed


def as_read(text: str) -> str:
    """`text` with such RECURRENCE-IDs written as dates; unchanged (the same object) otherwise."""
    if not may_have_midnight_rids(text):
        return text
    try:
        resource = Resource.parse(text)
    except ValueError:
        return text
    return resource.render() if midnight_rids_as_dates(resource) else text


def _is_date(line: str | None) -> bool:
    if line is None:
        return False
    params = params_of(line).upper()
    return ("VALUE=DATE" in params and "VALUE=DATE-TIME" not in params) or len(value_of(line).strip()) == 8
