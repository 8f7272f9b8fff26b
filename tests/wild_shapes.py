"""Shapes a decade of real Apple, Google, Outlook and Exchange calendars holds that the other
corpora did not: each with its busy time worked out by hand (UTC, configured zone
Europe/Berlin) and what a CalDAV client of the mirror must be shown.

Floating times are read in the configured zone by busy time; the mirror's copy binds them to
that zone, so Radicale (which would read them as UTC) shows them where busy time has them.
"""

from __future__ import annotations

from dataclasses import dataclass

from calmirror.testing import APPLE_ID, ical

BERLIN = tuple(ical.VTIMEZONES["Europe/Berlin"])


@dataclass(frozen=True)
class Wild:
    name: str
    text: str
    busy: tuple[tuple[str, str], ...]  # UTC, by hand, configured zone Europe/Berlin
    uid: str = ""
    seen: tuple[str, ...] | None = None  # UTC starts a client sees, where not the busy ones
    window: tuple[str, str] = ("2026-12-01 00:00", "2027-01-10 00:00")  # UTC, where `busy` is given
    # Radicale 3.9's time-range walk keeps the instance an all-day override moved (it compares
    # the override's date with the instance's date-time): a query of that day returns the object
    # too, which costs a client nothing but a look (it expands the object itself)
    radicale_extra: tuple[str, ...] = ()

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

# --- zone names as other clients write them ---------------------------------------------------

_MOZILLA = "/mozilla.org/20070129_1/Europe/Berlin"
_EVOLUTION = "/freeassociation.sourceforge.net/Tzfile/Europe/Berlin"

QUOTED_TZID = Wild(
    "quoted-tzid",
    _calendar(
        _one(
            "quoted-tzid", 'DTSTART;TZID="Europe/Berlin":20261216T100000', 'DTEND;TZID="Europe/Berlin":20261216T110000'
        ),
        zones=BERLIN,
    ),
    (("2026-12-16 09:00", "2026-12-16 10:00"),),
)

MOZILLA_TZID = Wild(
    "mozilla-tzid",
    _calendar(
        _one("mozilla-tzid", f"DTSTART;TZID={_MOZILLA}:20261216T120000", f"DTEND;TZID={_MOZILLA}:20261216T130000"),
        zones=tuple(line.replace("TZID:Europe/Berlin", f"TZID:{_MOZILLA}") for line in BERLIN),
    ),
    (("2026-12-16 11:00", "2026-12-16 12:00"),),
)

PREFIXED_TZID_UNDEFINED = Wild(
    "prefixed-tzid-undefined",
    _calendar(
        _one(
            "prefixed-tzid-undefined",
            f"DTSTART;TZID={_EVOLUTION}:20261216T140000",
            f"DTEND;TZID={_EVOLUTION}:20261216T150000",
        )
    ),
    (("2026-12-16 13:00", "2026-12-16 14:00"),),
)

# --- ends not given ------------------------------------------------------------------------

DATE_WITHOUT_END = Wild(
    "date-without-end",  # RFC 5545 3.6.1: one day
    _calendar(_one("date-without-end", "DTSTART;VALUE=DATE:20261217", "TRANSP:OPAQUE")),
    (("2026-12-16 23:00", "2026-12-17 23:00"),),  # the day in Berlin
    seen=("2026-12-17 00:00",),  # the local server reads dates as UTC days
)

TIME_WITHOUT_END = Wild(
    "time-without-end",  # RFC 5545 3.6.1: ends where it starts, blocking nothing
    _calendar(_one("time-without-end", "DTSTART:20261217T100000Z")),
    (),
    seen=("2026-12-17 10:00",),
)

# (Several UIDs in one resource, or a VTODO or VAVAILABILITY beside a VEVENT, are no shapes
# iCloud holds: RFC 4791 4.1 forbids them, CalendarServer refuses them and so does the
# emulator. Feeds hold them: `feedsplit`.)

# --- the user's answer and Outlook's statuses ------------------------------------------------

_ORGANIZER = "ORGANIZER;CN=Boss:mailto:boss@example.net"
DECLINED = Wild(
    "declined",
    _calendar(
        _one(
            "declined",
            "DTSTART:20261221T090000Z",
            "DTEND:20261221T100000Z",
            _ORGANIZER,
            f"ATTENDEE;CN=Me;PARTSTAT=DECLINED:mailto:{APPLE_ID}",
        )
    ),
    (),
    seen=("2026-12-21 09:00",),  # clients show it (struck through); it blocks nothing
)

DELEGATED = Wild(
    "delegated",
    _calendar(
        _one(
            "delegated",
            "DTSTART:20261221T110000Z",
            "DTEND:20261221T120000Z",
            _ORGANIZER,
            f'ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:deputy@example.net":mailto:{APPLE_ID}',
            f'ATTENDEE;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM="mailto:{APPLE_ID}":mailto:deputy@example.net',
        )
    ),
    (("2026-12-21 11:00", "2026-12-21 12:00"),),  # only DECLINED frees time (rules.is_busy)
)

INTENDED_FREE = Wild(
    "outlook-intended-free",
    _calendar(
        _one(
            "outlook-intended-free",
            "DTSTART:20261221T130000Z",
            "DTEND:20261221T140000Z",
            "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
            "X-MICROSOFT-CDO-INTENDEDSTATUS:FREE",
        )
    ),
    (("2026-12-21 13:00", "2026-12-21 14:00"),),  # this copy's own status is BUSY
)

BUSY_FREE = Wild(
    "outlook-busystatus-free",
    _calendar(
        _one(
            "outlook-busystatus-free",
            "DTSTART:20261221T150000Z",
            "DTEND:20261221T160000Z",
            "X-MICROSOFT-CDO-BUSYSTATUS:FREE",
        )
    ),
    (),
    seen=("2026-12-21 15:00",),
)

# --- UIDs ----------------------------------------------------------------------------------

LONG_UID = "040000008200E00074C5B7101A82E008" + "0" * 40 + "".join(f"{n:02X}" for n in range(120))
LONG = Wild(
    "long-uid",
    _calendar(_one(LONG_UID, "DTSTART:20261222T080000Z", "DTEND:20261222T090000Z")),
    (("2026-12-22 08:00", "2026-12-22 09:00"),),
    uid=LONG_UID,
)

SLASHED = Wild(
    "uid-with-slashes",
    _calendar(_one("https://example.org/cal/events/42?x=1&y=2", "DTSTART:20261222T100000Z", "DTEND:20261222T110000Z")),
    (("2026-12-22 10:00", "2026-12-22 11:00"),),
    uid="https://example.org/cal/events/42?x=1&y=2",
)

# --- RFC 7529 SKIP=BACKWARD: a month without the day takes its last day, and that counts -----

SKIP_BACKWARD_MONTHLY = Wild(
    "skip-backward-monthly",
    _calendar(
        _one(
            "skip-backward-monthly",
            "DTSTART:20270131T090000Z",
            "DTEND:20270131T100000Z",
            "RRULE:RSCALE=GREGORIAN;FREQ=MONTHLY;SKIP=BACKWARD;COUNT=4",
        )
    ),
    (
        ("2027-01-31 09:00", "2027-01-31 10:00"),
        ("2027-02-28 09:00", "2027-02-28 10:00"),
        ("2027-03-31 09:00", "2027-03-31 10:00"),
        ("2027-04-30 09:00", "2027-04-30 10:00"),
    ),
    window=("2027-01-01 00:00", "2027-12-31 00:00"),
)

SKIP_BACKWARD_LEAP_DAY = Wild(
    "skip-backward-leap-day",
    _calendar(
        _one(
            "skip-backward-leap-day",
            "DTSTART:20240229T120000Z",
            "DTEND:20240229T130000Z",
            "RRULE:RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=BACKWARD;COUNT=4",
        )
    ),
    (("2026-02-28 12:00", "2026-02-28 13:00"), ("2027-02-28 12:00", "2027-02-28 13:00")),
    window=("2026-01-01 00:00", "2028-12-31 00:00"),  # COUNT=4 ends in 2027: nothing in 2028
)

# --- overrides whose RECURRENCE-ID is written in another form than DTSTART ------------------
# (found breaking other readers: ical.js with iCloud's UTC RECURRENCE-IDs, DAVx5 writing the
# override's own zone, node-ical with Exchange's midnight DATE-TIME on an all-day series)

RID_IN_UTC = Wild(
    "rid-in-utc",
    _calendar(
        _one("rid-in-utc", "DTSTART;TZID=Europe/Berlin:20261223T100000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"),
        _one(
            "rid-in-utc",
            "RECURRENCE-ID:20261224T090000Z",
            "DTSTART;TZID=Europe/Berlin:20261224T150000",
            "DURATION:PT1H",
        ),
        zones=BERLIN,
    ),
    (
        ("2026-12-23 09:00", "2026-12-23 10:00"),
        ("2026-12-24 14:00", "2026-12-24 15:00"),
        ("2026-12-25 09:00", "2026-12-25 10:00"),
    ),
)

RID_IN_OTHER_ZONE = Wild(
    "rid-in-other-zone",
    _calendar(
        _one(
            "rid-in-other-zone",
            "DTSTART;TZID=America/New_York:20261223T040000",
            "DURATION:PT1H",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
        _one(
            "rid-in-other-zone",
            "RECURRENCE-ID;TZID=Europe/Berlin:20261224T100000",  # 04:00 in New York
            "DTSTART;TZID=Europe/Berlin:20261224T160000",
            "DURATION:PT1H",
        ),
        zones=BERLIN,
    ),
    (
        ("2026-12-23 09:00", "2026-12-23 10:00"),
        ("2026-12-24 15:00", "2026-12-24 16:00"),
        ("2026-12-25 09:00", "2026-12-25 10:00"),
    ),
)

RID_TIME_ON_ALL_DAY = Wild(
    "rid-time-on-all-day",
    _calendar(
        _one(
            "rid-time-on-all-day",
            "DTSTART;VALUE=DATE:20261228",
            "DTEND;VALUE=DATE:20261229",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
        _one(
            "rid-time-on-all-day",
            "RECURRENCE-ID;TZID=W. Europe Standard Time:20261229T000000",
            "DTSTART;VALUE=DATE:20261231",
            "DTEND;VALUE=DATE:20270101",
        ),
    ),
    # the days in Berlin; the 29th moved to the 31st
    (
        ("2026-12-27 23:00", "2026-12-28 23:00"),
        ("2026-12-29 23:00", "2026-12-30 23:00"),
        ("2026-12-30 23:00", "2026-12-31 23:00"),
    ),
    seen=("2026-12-28 00:00", "2026-12-30 00:00", "2026-12-31 00:00"),
    radicale_extra=("2026-12-29 00:00",),
)

# --- a VTIMEZONE whose TZID property carries a parameter, after the event (ri_cal) -----------

TZID_WITH_PARAMETER = Wild(
    "tzid-with-parameter",
    _calendar(
        _one(
            "tzid-with-parameter",
            "DTSTART;TZID=America/Los_Angeles;VALUE=DATE-TIME:20261230T090000",
            "DTEND;TZID=America/Los_Angeles;VALUE=DATE-TIME:20261230T100000",
        )
    ).replace(
        "END:VCALENDAR",
        "\r\n".join(
            [
                "BEGIN:VTIMEZONE",
                "TZID;X-RICAL-TZSOURCE=TZINFO:America/Los_Angeles",
                "BEGIN:STANDARD",
                "DTSTART:20261101T020000",
                "RDATE:20261101T020000",
                "TZOFFSETFROM:-0700",
                "TZOFFSETTO:-0800",
                "TZNAME:PST",
                "END:STANDARD",
                "END:VTIMEZONE",
                "END:VCALENDAR",
            ]
        ),
    ),
    (("2026-12-30 17:00", "2026-12-30 18:00"),),
)

# A series cut back to before its own start ("delete this and all following" on its first
# occurrence, as some clients write it): DTSTART still counts (RFC 5545), Radicale refused it.
UNTIL_BEFORE_START = Wild(
    "until-before-start",
    _calendar(
        _one(
            "until-before-start",
            "DTSTART;TZID=Europe/Berlin:20261214T100000",
            "DTEND;TZID=Europe/Berlin:20261214T110000",
            "RRULE:FREQ=WEEKLY;UNTIL=20261213T225959Z",
        ),
        zones=BERLIN,
    ),
    (("2026-12-14 09:00", "2026-12-14 10:00"),),
)

# An override carrying a rule of its own (DAVx5 wrote them, ical4android #138): busy time reads
# it as the one occurrence it overrides; Radicale walked its rule every day for ever.
OVERRIDE_WITH_RULE = Wild(
    "override-with-rule",
    _calendar(
        _one(
            "override-with-rule",
            "DTSTART;TZID=Europe/Berlin:20261214T120000",
            "DTEND;TZID=Europe/Berlin:20261214T130000",
            "RRULE:FREQ=DAILY;COUNT=4",
            "SEQUENCE:3",
        ),
        _one(
            "override-with-rule",
            "RECURRENCE-ID;TZID=Europe/Berlin:20261215T120000",
            "RRULE:FREQ=DAILY;INTERVAL=1",
            "DTSTART;TZID=Europe/Berlin:20261215T150000",
            "DTEND;TZID=Europe/Berlin:20261215T160000",
            "SEQUENCE:3",
        ),
        zones=BERLIN,
    ),
    (
        ("2026-12-14 11:00", "2026-12-14 12:00"),
        ("2026-12-15 14:00", "2026-12-15 15:00"),
        ("2026-12-16 11:00", "2026-12-16 12:00"),
        ("2026-12-17 11:00", "2026-12-17 12:00"),
    ),
)

#: iCloud answers a PUT of these 404 (ICLOUD.md: neither DTEND nor DURATION) and so does the
#: emulator; they reach an account from other sources (an invitation, an import) all the same.
PUT_REFUSED = frozenset({DATE_WITHOUT_END.name, TIME_WITHOUT_END.name})

WILD: tuple[Wild, ...] = (
    EMPTY_IANA,
    EMPTY_WINDOWS,
    EMPTY_UNKNOWN,
    FLOATING_SINGLE,
    FLOATING_SERIES,
    DUPLICATE_HIGHER_FIRST,
    DUPLICATE_TIE,
    DUPLICATE_UNNUMBERED,
    QUOTED_TZID,
    MOZILLA_TZID,
    PREFIXED_TZID_UNDEFINED,
    DATE_WITHOUT_END,
    TIME_WITHOUT_END,
    DECLINED,
    DELEGATED,
    INTENDED_FREE,
    BUSY_FREE,
    LONG,
    SLASHED,
    SKIP_BACKWARD_MONTHLY,
    SKIP_BACKWARD_LEAP_DAY,
    RID_IN_UTC,
    RID_IN_OTHER_ZONE,
    RID_TIME_ON_ALL_DAY,
    TZID_WITH_PARAMETER,
    UNTIL_BEFORE_START,
    OVERRIDE_WITH_RULE,
)
