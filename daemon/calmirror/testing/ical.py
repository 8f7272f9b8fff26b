"""iCalendar text for tests and benchmarks: VTIMEZONE blocks, date-time values, whole VCALENDARs,
and the one `event()` builder.

One copy for the tests, the availability benchmark and the benchmark corpus, so the zones and
line endings they feed calmirror cannot drift apart. Imports nothing of calmirror:
`bench/bench_availability.py` reports its own peak RSS, and the daemon is about 34 MiB more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

#: The PRODID iCloud resources carry (Apple's own clients write them).
APPLE_PRODID = "-//Apple Inc.//macOS 15.3.2//EN"

#: One observance of a zone: (TZNAME, UTC offset, DTSTART of its first onset, RRULE).
Observance = tuple[str, str, str, str]


def vtimezone(tzid: str, *, standard: Observance, daylight: Observance) -> list[str]:
    """A VTIMEZONE in Apple's layout (DAYLIGHT first); each observance's TZOFFSETFROM is the other's offset."""

    def part(kind: str, own: Observance, other: Observance) -> list[str]:
        name, offset, onset, rule = own
        return [
            f"BEGIN:{kind}",
            f"TZOFFSETFROM:{other[1]}",
            f"RRULE:{rule}",
            f"DTSTART:{onset}",
            f"TZNAME:{name}",
            f"TZOFFSETTO:{offset}",
            f"END:{kind}",
        ]

    return [
        "BEGIN:VTIMEZONE",
        f"TZID:{tzid}",
        *part("DAYLIGHT", daylight, standard),
        *part("STANDARD", standard, daylight),
        "END:VTIMEZONE",
    ]


#: The zones the tests and benchmarks use, as lines (no line endings).
VTIMEZONES: dict[str, list[str]] = {
    "Europe/Berlin": vtimezone(
        "Europe/Berlin",
        standard=("CET", "+0100", "19961027T030000", "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"),
        daylight=("CEST", "+0200", "19810329T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
    ),
    "America/New_York": vtimezone(
        "America/New_York",
        standard=("EST", "-0500", "20071104T020000", "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"),
        daylight=("EDT", "-0400", "20070311T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"),
    ),
}


def vtimezone_for(zone: str | None) -> list[str]:
    """The VTIMEZONE lines a resource with times in `zone` needs: none for UTC, floating or all-day."""
    return VTIMEZONES.get(zone, []) if zone else []


def stamp(value: dt.datetime | dt.date, zone: str | None) -> str:
    """What follows a DTSTART-like property's name: `;VALUE=DATE:…` for a date, else a UTC (`zone`
    "UTC"), floating (`zone` None) or `;TZID=…` wall time; so one value can be written as DTSTART,
    DTEND, EXDATE or RECURRENCE-ID alike."""
    if not isinstance(value, dt.datetime):
        return f";VALUE=DATE:{value:%Y%m%d}"
    if zone == "UTC":
        return f":{value:%Y%m%dT%H%M%S}Z"
    if zone is None:
        return f":{value:%Y%m%dT%H%M%S}"
    return f";TZID={zone}:{value:%Y%m%dT%H%M%S}"


def vcalendar_lines(
    *vevents: Sequence[str], head: Sequence[str] = (), prodid: str = "-//calmirror tests//EN"
) -> list[str]:
    """The unfolded lines of a VCALENDAR: `head` (CALSCALE, VTIMEZONEs) after PRODID, then each VEVENT's
    property lines wrapped in BEGIN/END. Lines, so a caller can fold them as Apple does."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{prodid}", *head]
    for vevent in vevents:
        lines += ["BEGIN:VEVENT", *vevent, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return lines


def vcalendar(*vevents: Sequence[str], head: Sequence[str] = (), prodid: str = "-//calmirror tests//EN") -> str:
    """A VCALENDAR resource with CRLF after every line, as CalDAV servers send it."""
    return "".join(line + "\r\n" for line in vcalendar_lines(*vevents, head=head, prodid=prodid))


def event(
    uid: str,
    summary: str = "Meeting",
    start: str = "20261201T100000Z",
    end: str | None = "20261201T110000Z",
    *,
    duration: str | None = None,
    component: str = "VEVENT",
    extra: str = "",
) -> str:
    """One UTC event (or `component`) as a whole resource. `end=None` leaves DTEND out (with
    `duration`, DURATION stands in its place); `extra` is property lines, each ending in CRLF."""
    lines = [f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"DTSTART:{start}"]
    if duration or end:
        lines.append(f"DURATION:{duration}" if duration else f"DTEND:{end}")
    lines.append(f"SUMMARY:{summary}")
    body = "".join(line + "\r\n" for line in lines) + extra
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror tests//EN\r\n"
        f"BEGIN:{component}\r\n{body}END:{component}\r\nEND:VCALENDAR\r\n"
    )
