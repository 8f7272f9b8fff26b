"""Shapes a decade of real Apple, Google, Outlook and Exchange calendars holds that the other
corpora did not: each with its busy time worked out by hand (UTC, configured zone
Europe/Berlin) and what a CalDAV client of the mirror must be shown.

Floating times are read in the configured zone by busy time; the mirror's copy binds them to
that zone, so Radicale (which would read them as UTC) shows them where busy time has them.
"""

from __future__ import annotations

from dataclasses import dataclass

from calmirror.testing import ical

BERLIN = tuple(ical.VTIMEZONES["Europe/Berlin"])


@dataclass(frozen=True)
class Wild:
    name: str
    text: str
    busy: tuple[tuple[str, str], ...]  # UTC, by hand, configured zone Europe/Berlin
    uid: str = ""

    @property
    def key(self) -> str:
        return self.uid or self.name


def _calendar(*events: tuple[str, ...], zones: tuple[str, ...] = ()) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example Corp.//Wild shapes//EN", *zones]
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def _empty_zone(tzid: str) -> tuple[str, ...]:
    return ("BEGIN:VTIMEZONE", f"TZID:{tzid}", "END:VTIMEZONE")


def _one(uid: str, *lines: str) -> tuple[str, ...]:
    return (f"UID:{uid}", "DTSTAMP:20261201T090000Z", *lines)


# --- empty VTIMEZONE blocks (no STANDARD, no DAYLIGHT): Radicale refuses the object ------------

EMPTY_IANA = Wild(
    "empty-vtimezone-iana",
    _calendar(
        _one(
            "empty-vtimezone-iana",
            "DTSTART;TZID=America/New_York:20261214T100000",
            "DTEND;TZID=America/New_York:20261214T110000",
        ),
        zones=_empty_zone("America/New_York"),
    ),
    (("2026-12-14 15:00", "2026-12-14 16:00"),),
)

EMPTY_WINDOWS = Wild(
    "empty-vtimezone-windows",
    _calendar(
        _one(
            "empty-vtimezone-windows",
            "DTSTART;TZID=W. Europe Standard Time:20261214T120000",
            "DTEND;TZID=W. Europe Standard Time:20261214T130000",
            "RRULE:FREQ=WEEKLY;COUNT=2",
        ),
        zones=_empty_zone("W. Europe Standard Time"),
    ),
    (("2026-12-14 11:00", "2026-12-14 12:00"), ("2026-12-21 11:00", "2026-12-21 12:00")),
)

EMPTY_UNKNOWN = Wild(
    "empty-vtimezone-unknown",
    _calendar(
        _one(
            "empty-vtimezone-unknown",
            "DTSTART;TZID=Empty/Zone:20261214T140000",
            "DTEND;TZID=Empty/Zone:20261214T150000",
        ),
        zones=_empty_zone("Empty/Zone"),
    ),
    (("2026-12-14 13:00", "2026-12-14 14:00"),),  # no such zone: floating, read in Berlin
)

# --- floating times: the same wall time wherever the reader is, read in the configured zone ---

FLOATING_SINGLE = Wild(
    "floating-single",
    _calendar(_one("floating-single", "DTSTART:20261215T100000", "DTEND:20261215T113000")),
    (("2026-12-15 09:00", "2026-12-15 10:30"),),
)

# late in the evening (the next day in UTC from midnight on), an EXDATE, a moved occurrence and
# a floating UNTIL, all in the same floating form
FLOATING_SERIES = Wild(
    "floating-series",
    _calendar(
        _one(
            "floating-series",
            "DTSTART:20261216T230000",
            "DURATION:PT1H",
            "RRULE:FREQ=DAILY;UNTIL=20261219T230000",
            "EXDATE:20261217T230000",
        ),
        _one("floating-series", "RECURRENCE-ID:20261218T230000", "DTSTART:20261218T200000", "DURATION:PT1H"),
    ),
    (
        ("2026-12-16 22:00", "2026-12-16 23:00"),
        ("2026-12-18 19:00", "2026-12-18 20:00"),
        ("2026-12-19 22:00", "2026-12-19 23:00"),
    ),
)

# --- two overrides of one occurrence: the higher SEQUENCE wins, the first of equals ----------

_MASTER = ("DTSTART:20261202T100000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3")


def _override(at: str, *more: str) -> tuple[str, ...]:
    return ("RECURRENCE-ID:20261203T100000Z", f"DTSTART:20261203T{at}00Z", "DURATION:PT1H", *more)


DUPLICATE_HIGHER_FIRST = Wild(
    "duplicate-rid-higher-first",
    _calendar(
        _one("duplicate-rid-higher-first", *_MASTER),
        _one("duplicate-rid-higher-first", *_override("1500", "SEQUENCE:2")),
        _one("duplicate-rid-higher-first", *_override("1800", "SEQUENCE:1")),
    ),
    (
        ("2026-12-02 10:00", "2026-12-02 11:00"),
        ("2026-12-03 15:00", "2026-12-03 16:00"),
        ("2026-12-04 10:00", "2026-12-04 11:00"),
    ),
)

DUPLICATE_TIE = Wild(
    "duplicate-rid-tie",
    _calendar(
        _one("duplicate-rid-tie", *_MASTER),
        _one("duplicate-rid-tie", *_override("1500", "SEQUENCE:1")),
        _one("duplicate-rid-tie", *_override("1800", "SEQUENCE:1")),
    ),
    (
        ("2026-12-02 10:00", "2026-12-02 11:00"),
        ("2026-12-03 15:00", "2026-12-03 16:00"),
        ("2026-12-04 10:00", "2026-12-04 11:00"),
    ),
)

# No SEQUENCE reads lower than SEQUENCE:0 (recurring-ical-events takes it as -1).
DUPLICATE_UNNUMBERED = Wild(
    "duplicate-rid-unnumbered",
    _calendar(
        _one("duplicate-rid-unnumbered", *_MASTER),
        _one("duplicate-rid-unnumbered", *_override("1500")),
        _one("duplicate-rid-unnumbered", *_override("1800", "SEQUENCE:0")),
    ),
    (
        ("2026-12-02 10:00", "2026-12-02 11:00"),
        ("2026-12-03 18:00", "2026-12-03 19:00"),
        ("2026-12-04 10:00", "2026-12-04 11:00"),
    ),
)

WILD: tuple[Wild, ...] = (
    EMPTY_IANA,
    EMPTY_WINDOWS,
    EMPTY_UNKNOWN,
    FLOATING_SINGLE,
    FLOATING_SERIES,
    DUPLICATE_HIGHER_FIRST,
    DUPLICATE_TIE,
    DUPLICATE_UNNUMBERED,
)
