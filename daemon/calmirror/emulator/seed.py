"""The account an emulator starts with: Home, Work, a read-only Family share, Reminders.

Ids follow iCloud's three shapes (`home`, uppercase UUIDs, 64-hex for shares) and are
derived from the Apple ID, so a given account always gets the same URLs.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, timedelta
from importlib import resources

from calmirror.emulator.store import CalendarInfo

SEEDS = ("sample", "empty")

_FAMILY_EVENTS = [
    ("FAMILY-DINNER-20261205", "Family dinner", "20261205T180000", "20261205T210000"),
    ("FAMILY-ZOO-20261213", "Zoo with the kids", "20261213T100000", "20261213T150000"),
    ("FAMILY-CAROLS-20261220", "Carol concert", "20261220T170000", "20261220T183000"),
]
_REMINDERS = [
    ("REMINDER-GIFTS-2026", "Buy presents", "20261215T170000Z"),
    ("REMINDER-TAXES-2027", "File the tax return", "20270131T170000Z"),
]


def calendar_plan(apple_id: str) -> list[CalendarInfo]:
    """The four calendars every seeded account has."""
    return [
        CalendarInfo("home", "Home", ("VEVENT",), True, "#1BADF8FF"),
        CalendarInfo(_uuid_id(apple_id, "Work"), "Work", ("VEVENT",), True, "#CC73E1FF"),
        CalendarInfo(_hex_id(apple_id, "Family"), "Family", ("VEVENT",), False, "#FFCC00FF"),
        CalendarInfo(_uuid_id(apple_id, "Reminders"), "Reminders", ("VTODO",), True, "#63DA38FF"),
    ]


def sample_items(calendar_name: str) -> list[tuple[str, str]]:
    """(item name, iCalendar text) for one seeded calendar."""
    if calendar_name in ("Home", "Work"):
        folder = resources.files("calmirror.emulator").joinpath("sample", calendar_name)
        return sorted(
            (entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir() if entry.name.endswith(".ics")
        )
    if calendar_name == "Family":
        return [(f"{uid}.ics", _event(uid, summary, start, end)) for uid, summary, start, end in _FAMILY_EVENTS]
    if calendar_name == "Reminders":
        return [(f"{uid}.ics", _todo(uid, summary, due)) for uid, summary, due in _REMINDERS]
    return []


def generated_items(count: int, first_day: date) -> list[tuple[str, str]]:
    """`count` ordinary events for trials and benchmarks: weekdays from `first_day`, between
    09:00 and 18:00 Berlin time, 30 to 120 minutes long, in a fixed pseudo-random pattern
    (the same count always gives the same calendar), some days full and some free."""
    items = []
    day, moment = first_day, 9 * 60
    for index in range(count):
        length = 30 * (1 + (index * 7) % 4)
        moment += 30 * ((index * 5) % 3)  # a gap of 0, 30 or 60 minutes before the next one
        if moment + length > 18 * 60 or ((index * 11) % 9 == 0 and moment > 9 * 60):
            day, moment = _next_weekday(day), 9 * 60
        while day.weekday() >= 5:
            day = _next_weekday(day)
        start = f"{day:%Y%m%d}T{moment // 60:02d}{moment % 60:02d}00"
        end_minutes = moment + length
        end = f"{day:%Y%m%d}T{end_minutes // 60:02d}{end_minutes % 60:02d}00"
        uid = f"GENERATED-{index:06d}"
        items.append((f"{uid}.ics", _event(uid, f"Generated meeting {index + 1}", start, end)))
        moment = end_minutes
    return items


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _uuid_id(apple_id: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"calmirror-emulator:{apple_id.lower()}:{name}")).upper()


def _hex_id(apple_id: str, name: str) -> str:
    return hashlib.sha256(f"calmirror-emulator-share:{apple_id.lower()}:{name}".encode()).hexdigest()


def _event(uid: str, summary: str, start: str, end: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Apple Inc.//macOS 15.2//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "DTSTART:19810329T020000",
        "TZNAME:CEST",
        "TZOFFSETTO:+0200",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "DTSTART:19961027T030000",
        "TZNAME:CET",
        "TZOFFSETTO:+0100",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "CREATED:20261101T090000Z",
        f"UID:{uid}",
        f"DTEND;TZID=Europe/Berlin:{end}",
        "TRANSP:OPAQUE",
        f"SUMMARY:{summary}",
        f"DTSTART;TZID=Europe/Berlin:{start}",
        "DTSTAMP:20261101T090000Z",
        "SEQUENCE:0",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def _todo(uid: str, summary: str, due: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Apple Inc.//iOS 18.2//EN",
        "BEGIN:VTODO",
        "CREATED:20261101T090000Z",
        f"UID:{uid}",
        f"SUMMARY:{summary}",
        f"DUE:{due}",
        "STATUS:NEEDS-ACTION",
        "DTSTAMP:20261101T090000Z",
        "SEQUENCE:0",
        "END:VTODO",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"
