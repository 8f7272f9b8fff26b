"""iCalendar resources iCloud holds that stricter stores (Radicale, vobject) refuse.

Each is valid iCalendar that real iCloud stores and serves back unchanged apart from
line endings (ICLOUD.md, "Data iCloud holds that other stores refuse").
"""

from __future__ import annotations

from tests.wild_shapes import WILD


def _ics(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


_BERLIN = (
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "DTSTART:19810329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "DTSTART:19961027T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)

_CUSTOM_ZONE_PLUS_ONE = (
    "BEGIN:VTIMEZONE",
    "TZID:Customized Time Zone",
    "BEGIN:STANDARD",
    "DTSTART:16010101T030000",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:16010101T020000",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
)

_CUSTOM_ZONE_MINUS_FIVE = (
    "BEGIN:VTIMEZONE",
    "TZID:Customized Time Zone",
    "BEGIN:STANDARD",
    "DTSTART:16010101T020000",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:16010101T020000",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
)

OVERRIDES_WITHOUT_MASTER = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Apple Inc.//iPhone OS 18.1//EN",
    "BEGIN:VEVENT",
    "UID:series-owned-by-someone-else@example.org",
    "DTSTAMP:20261201T090000Z",
    "RECURRENCE-ID:20261208T090000Z",
    "DTSTART:20261208T090000Z",
    "DTEND:20261208T100000Z",
    "SUMMARY:Standup (invited to this one)",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:series-owned-by-someone-else@example.org",
    "DTSTAMP:20261201T090000Z",
    "RECURRENCE-ID:20261215T090000Z",
    "DTSTART:20261215T110000Z",
    "DTEND:20261215T120000Z",
    "SUMMARY:Standup (moved, invited to this one)",
    "END:VEVENT",
    "END:VCALENDAR",
)

HUGE_COUNT = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Example Corp.//Reminders 2.0//EN",
    "BEGIN:VEVENT",
    "UID:forever-daily@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART:20261201T073000Z",
    "DTEND:20261201T074500Z",
    "RRULE:FREQ=DAILY;COUNT=1000000000",
    "SUMMARY:Take the pills",
    "END:VEVENT",
    "END:VCALENDAR",
)

RDATE_PERIOD = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Example Corp.//Planner//EN",
    "BEGIN:VEVENT",
    "UID:rdate-period@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART:20261203T140000Z",
    "DTEND:20261203T150000Z",
    "RDATE;VALUE=PERIOD:20261205T100000Z/20261205T113000Z,20261207T160000Z/PT2H",
    "SUMMARY:Workshop sessions",
    "END:VEVENT",
    "END:VCALENDAR",
)

CUSTOM_ZONE_BERLIN_LIKE = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:Microsoft Exchange Server 2010",
    "METHOD:REQUEST",
    *_CUSTOM_ZONE_PLUS_ONE,
    "BEGIN:VEVENT",
    "UID:040000008200E00074C5B7101A82E00800000000-berlin",
    "DTSTAMP:20261201T090000Z",
    "DTSTART;TZID=Customized Time Zone:20261209T100000",
    "DTEND;TZID=Customized Time Zone:20261209T110000",
    "SUMMARY:Review with the Berlin office",
    "END:VEVENT",
    "END:VCALENDAR",
)

CUSTOM_ZONE_NEW_YORK_LIKE = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:Microsoft Exchange Server 2010",
    "METHOD:REQUEST",
    *_CUSTOM_ZONE_MINUS_FIVE,
    "BEGIN:VEVENT",
    "UID:040000008200E00074C5B7101A82E00800000000-newyork",
    "DTSTAMP:20261201T090000Z",
    "DTSTART;TZID=Customized Time Zone:20261209T100000",
    "DTEND;TZID=Customized Time Zone:20261209T110000",
    "SUMMARY:Review with the New York office",
    "END:VEVENT",
    "END:VCALENDAR",
)

WINDOWS_ZONE_WITH_VTIMEZONE = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
    "BEGIN:VTIMEZONE",
    "TZID:W. Europe Standard Time",
    "BEGIN:STANDARD",
    "DTSTART:16011028T030000",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:16010325T020000",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
    "BEGIN:VEVENT",
    "UID:outlook-with-zone@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART;TZID=W. Europe Standard Time:20261210T090000",
    "DTEND;TZID=W. Europe Standard Time:20261210T093000",
    "SUMMARY:Outlook meeting (zone defined)",
    "END:VEVENT",
    "END:VCALENDAR",
)

WINDOWS_ZONE_WITHOUT_VTIMEZONE = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
    "BEGIN:VEVENT",
    "UID:outlook-without-zone@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART;TZID=W. Europe Standard Time:20261211T090000",
    "DTEND;TZID=W. Europe Standard Time:20261211T093000",
    "SUMMARY:Outlook meeting (zone by name only)",
    "END:VEVENT",
    "END:VCALENDAR",
)

# RFC 5545 3.3.10: DTSTART counts toward COUNT even where the rule's filters would not produce
# it (dateutil and recurring-ical-events add it on top; Radicale does not).
COUNT_OFF_RULE_SETPOS = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Apple Inc.//macOS 15.3.2//EN",
    "BEGIN:VEVENT",
    "UID:count-off-rule-setpos@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART:20261203T140000Z",
    "DTEND:20261203T150000Z",
    "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3",
    "SUMMARY:Month-end review (first one early)",
    "END:VEVENT",
    "END:VCALENDAR",
)

COUNT_OFF_RULE_MONTHDAY = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Apple Inc.//macOS 15.3.2//EN",
    "BEGIN:VEVENT",
    "UID:count-off-rule-monthday@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART;VALUE=DATE:20261202",
    "DTEND;VALUE=DATE:20261203",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=2",
    "SUMMARY:Rent (first one late)",
    "END:VEVENT",
    "END:VCALENDAR",
)

# RFC 7529 rules (Apple Calendar's lunar repeats; Radicale refuses RSCALE): DTSTART and the
# RDATE count, later lunar occurrences are not known; RSCALE=GREGORIAN is a plain rule.
RSCALE_CHINESE = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Apple Inc.//macOS 15.3.2//EN",
    "BEGIN:VEVENT",
    "UID:rscale-chinese@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART;VALUE=DATE:20270206",
    "DTEND;VALUE=DATE:20270207",
    "RRULE:RSCALE=CHINESE;FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=30",
    "RDATE;VALUE=DATE:20270210",
    "SUMMARY:New Year's Eve (lunar)",
    "END:VEVENT",
    "END:VCALENDAR",
)

RSCALE_GREGORIAN_SKIP = _ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Apple Inc.//macOS 15.3.2//EN",
    "BEGIN:VEVENT",
    "UID:rscale-gregorian-skip@example.org",
    "DTSTAMP:20261201T090000Z",
    "DTSTART:20261231T090000Z",
    "DTEND:20261231T100000Z",
    "RRULE:RSCALE=GREGORIAN;FREQ=MONTHLY;SKIP=BACKWARD;COUNT=4",
    "SUMMARY:Month-end close",
    "END:VEVENT",
    "END:VCALENDAR",
)


def _event(uid: str, *lines: str, zones: tuple[str, ...] = _BERLIN) -> str:
    head = ("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Apple Inc.//macOS 15.3.2//EN", *zones)
    return _ics(*head, "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261201T090000Z", *lines, "END:VEVENT", "END:VCALENDAR")


def _more(uid: str, *events: tuple[str, ...]) -> str:
    """One resource of several VEVENTs (a master and its overrides) of one UID."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Apple Inc.//macOS 15.3.2//EN", *_BERLIN]
    for event in events:
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261201T090000Z", *event, "END:VEVENT"]
    return _ics(*lines, "END:VCALENDAR")


# A DATE has no zone (RFC 5545 3.3.4); some writers add a TZID all the same: still all-day.
DATE_WITH_TZID = _event(
    "date-with-tzid@example.org",
    "DTSTART;VALUE=DATE;TZID=Europe/Berlin:20261210",
    "DTEND;VALUE=DATE;TZID=Europe/Berlin:20261211",
    "SUMMARY:Offsite (all day)",
)

# Shapes tried against Radicale and the RFC (each agrees); kept so every later change is checked.
HUNTED: dict[str, str] = {
    "wkst-su-interval": _event(
        "wkst-su@example.org",
        "DTSTART:20261201T100000Z",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU;COUNT=6",
    ),
    "byweekno": _event(
        "byweekno@example.org", "DTSTART:20261201T100000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYWEEKNO=1,20;BYDAY=MO"
    ),
    "byyearday": _event(
        "byyearday@example.org", "DTSTART:20261201T100000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYYEARDAY=1,-1;COUNT=4"
    ),
    "floating-until-on-zoned": _event(
        "floating-until@example.org",
        "DTSTART;TZID=Europe/Berlin:20261201T100000",
        "DURATION:PT1H",
        "RRULE:FREQ=DAILY;UNTIL=20261205T100000",
    ),
    "duration-in-weeks": _event("weeks@example.org", "DTSTART:20261201T100000Z", "DURATION:P1W"),
    "date-recurrence-id-on-timed": _more(
        "date-rid@example.org",
        ("DTSTART:20261201T100000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"),
        ("RECURRENCE-ID;VALUE=DATE:20261202", "DTSTART:20261202T150000Z", "DURATION:PT1H"),
    ),
    "same-recurrence-id-twice": _more(
        "same-rid@example.org",
        ("DTSTART:20261201T100000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"),
        ("RECURRENCE-ID:20261202T100000Z", "DTSTART:20261202T150000Z", "DURATION:PT1H", "SEQUENCE:1"),
        ("RECURRENCE-ID:20261202T100000Z", "DTSTART:20261202T180000Z", "DURATION:PT1H", "SEQUENCE:2"),
    ),
    "override-across-midnight": _more(
        "midnight@example.org",
        ("DTSTART;TZID=Europe/Berlin:20261201T230000", "DURATION:PT2H", "RRULE:FREQ=DAILY;COUNT=3"),
        (
            "RECURRENCE-ID;TZID=Europe/Berlin:20261202T230000",
            "DTSTART;TZID=Europe/Berlin:20261203T003000",
            "DURATION:PT2H",
        ),
    ),
    "override-across-dst": _more(
        "dst@example.org",
        ("DTSTART;TZID=Europe/Berlin:20270327T013000", "DURATION:PT2H", "RRULE:FREQ=DAILY;COUNT=3"),
        (
            "RECURRENCE-ID;TZID=Europe/Berlin:20270328T013000",
            "DTSTART;TZID=Europe/Berlin:20270328T013000",
            "DTEND;TZID=Europe/Berlin:20270328T040000",
        ),
    ),
    "cancelled-override": _more(
        "cancelled@example.org",
        ("DTSTART:20261201T100000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"),
        ("RECURRENCE-ID:20261202T100000Z", "DTSTART:20261202T100000Z", "DURATION:PT1H", "STATUS:CANCELLED"),
    ),
    # Shapes Radicale could not walk or store as busy time reads them; the copy writes them so
    # it can (`compat_dates`).
    "date-dtend-on-timed": _event("date-dtend@example.org", "DTSTART:20261201T100000Z", "DTEND;VALUE=DATE:20261202"),
    "date-rdate-on-timed": _event(
        "date-rdate@example.org",
        "DTSTART:20261201T100000Z",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;COUNT=2",
        "RDATE;VALUE=DATE:20261220",
    ),
    "date-exdate-on-timed": _event(
        "date-exdate@example.org",
        "DTSTART;TZID=Europe/Berlin:20261201T100000",
        "DURATION:PT1H",
        "RRULE:FREQ=DAILY;COUNT=3",
        "EXDATE;VALUE=DATE:20261202",
    ),
    "date-start-timed-end": _event(
        "date-start@example.org", "DTSTART;VALUE=DATE:20261210", "DTEND:20261210T150000Z", zones=()
    ),
    "dtend-before-dtstart": _event(
        "backwards@example.org", "DTSTART:20261201T100000Z", "DTEND:20261201T090000Z", "SUMMARY:Backwards"
    ),
    "negative-duration": _event("negative@example.org", "DTSTART:20261201T100000Z", "DURATION:-PT1H"),
    "tzid-with-a-trailing-blank": _event(
        "tzid-blank@example.org",
        "DTSTART;TZID=Europe/Berlin :20261210T100000",
        "DTEND;TZID=Europe/Berlin :20261210T110000",
        zones=(),
    ),
    "x-apple-odd-parameters": _event(
        "x-apple@example.org",
        "DTSTART:20261201T100000Z",
        "DURATION:PT1H",
        'X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-ADDRESS="a:b;c";X-TITLE=;X-APPLE-RADIUS=0:geo:0,0',
        "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT0S",
    ),
}

SHAPES: dict[str, str] = {
    "overrides-without-master": OVERRIDES_WITHOUT_MASTER,
    "huge-count": HUGE_COUNT,
    "rdate-period": RDATE_PERIOD,
    "custom-zone-berlin-like": CUSTOM_ZONE_BERLIN_LIKE,
    "custom-zone-new-york-like": CUSTOM_ZONE_NEW_YORK_LIKE,
    "windows-zone-with-vtimezone": WINDOWS_ZONE_WITH_VTIMEZONE,
    "windows-zone-without-vtimezone": WINDOWS_ZONE_WITHOUT_VTIMEZONE,
    "count-off-rule-setpos": COUNT_OFF_RULE_SETPOS,
    "count-off-rule-monthday": COUNT_OFF_RULE_MONTHDAY,
    "rscale-chinese": RSCALE_CHINESE,
    "rscale-gregorian-skip": RSCALE_GREGORIAN_SKIP,
    "date-with-tzid": DATE_WITH_TZID,
    **HUNTED,
    **{shape.name: shape.text for shape in WILD},
}
