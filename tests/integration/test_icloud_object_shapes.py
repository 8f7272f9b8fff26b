"""Shapes of objects iCloud holds, end to end: the emulator stores and serves each as iCloud
does, a real mirror pass copies it, its busy time is what a person reading it works out
(by hand, in UTC, below), and a CalDAV client of the mirror finds every occurrence where
busy time has it (Radicale's own time-range walk over what the mirror stores, and
recurring-ical-events over the same text, as a client expanding it itself would).

The shapes here are the ones the other corpora do not already hold: Apple's alarms,
structured locations and attachments, Outlook's zone names with colons and commas, a
RANGE=THISANDFUTURE override, EXRULE beside RDATEs, Outlook's out-of-office status, bare LF
line endings with a byte-order mark, and a 1.5 MB description.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

import icalendar
import pytest
import recurring_ical_events
import requests

from calmirror.availability.sources import BusySources
from calmirror.testing import ical
from tests.helpers import APP_PASSWORD, APPLE_ID
from tests.mirrored_shapes import Mirrored, mirrored_shapes, same_lines
from tests.radicale_view import radicale_starts

UTC = dt.UTC
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 10, tzinfo=UTC))
CONFIG = '\n[availability]\ntimezone = "Europe/Berlin"\n'
OUTLOOK_ZONE = "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"


def z(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Shape:
    name: str
    text: str
    busy: tuple[tuple[str, str], ...]  # UTC, worked out by hand

    @property
    def uid(self) -> str:
        return self.name


def _calendar(*lines: str, zones: tuple[str, ...] = ()) -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{ical.APPLE_PRODID}", "CALSCALE:GREGORIAN", *zones]
    return "\r\n".join([*head, *lines, "END:VCALENDAR"]) + "\r\n"


def _folded(name: str, value: str) -> list[str]:
    line = f"{name}:{value}"
    return [line[:75], *(" " + line[i : i + 74] for i in range(75, len(line), 74))]


APPLE = Shape(
    "apple-alarm-location",
    _calendar(
        "BEGIN:VEVENT",
        "UID:apple-alarm-location",
        "DTSTAMP:20261201T090000Z",
        "CREATED:20261201T090000Z",
        "DTSTART;TZID=Europe/Berlin:20261214T100000",
        "DTEND;TZID=Europe/Berlin:20261214T110000",
        "SUMMARY:Site visit",
        "LOCATION:Alexanderplatz 1\\n10178 Berlin\\nGermany",
        "X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-ADDRESS=Alexanderplatz 1\\n10178 Ber",
        ' lin;X-APPLE-RADIUS=70.5;X-TITLE="Alexanderplatz 1":geo:52.521918,13.413215',
        "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
        f"ORGANIZER;CN=Me;EMAIL={APPLE_ID}:mailto:{APPLE_ID}",
        f"ATTENDEE;CN=Me;CUTYPE=INDIVIDUAL;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{APPLE_ID}",
        "ATTENDEE;CN=Client;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;SCHEDULE-STATUS=1.2:mailto:c@example.net",
        "SEQUENCE:0",
        "BEGIN:VALARM",
        "X-WR-ALARMUID:5A1D1B0E-7C9E-4F43-9C1A-0D7E2A3B4C5D",
        "UID:5A1D1B0E-7C9E-4F43-9C1A-0D7E2A3B4C5D",
        "TRIGGER:-PT15M",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "X-APPLE-DEFAULT-ALARM:TRUE",
        "END:VALARM",
        "BEGIN:VALARM",
        "X-WR-ALARMUID:6B2E2C1F-8DAF-4054-AD2B-1E8F3B4C5D6E",
        "TRIGGER;VALUE=DATE-TIME:19760401T005545Z",
        "ACTION:NONE",
        "END:VALARM",
        "END:VEVENT",
        zones=tuple(ical.VTIMEZONES["Europe/Berlin"]),
    ),
    (("2026-12-14 09:00", "2026-12-14 10:00"),),
)

_BLOB = base64.b64encode(bytes(range(256)) * 1200).decode()  # 300 KB of a PDF, say
ATTACHMENTS = Shape(
    "attachments",
    _calendar(
        "BEGIN:VEVENT",
        "UID:attachments",
        "DTSTAMP:20261201T090000Z",
        "DTSTART:20261214T120000Z",
        "DTEND:20261214T130000Z",
        "SUMMARY:Contract review",
        *_folded("ATTACH;ENCODING=BASE64;VALUE=BINARY;FMTTYPE=application/pdf;X-FILENAME=contract.pdf", _BLOB),
        "ATTACH;FILENAME=agenda.pdf;FMTTYPE=application/pdf;MANAGED-ID=2;SIZE=48211:https://p",
        " 01-calendarws.icloud.com/ca/attachment/1/9f8e7d6c/agenda.pdf",
        "END:VEVENT",
    ),
    (("2026-12-14 12:00", "2026-12-14 13:00"),),
)

COLON_ZONE = Shape(
    "outlook-zone-with-colon",
    _calendar(
        "BEGIN:VEVENT",
        "UID:outlook-zone-with-colon",
        "DTSTAMP:20261201T090000Z",
        f'DTSTART;TZID="{OUTLOOK_ZONE}":20261215T090000',
        f'DTEND;TZID="{OUTLOOK_ZONE}":20261215T100000',
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "SUMMARY:Steering group",
        "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
        "END:VEVENT",
        zones=tuple(
            line.replace("TZID:Europe/Berlin", f"TZID:{OUTLOOK_ZONE}") for line in ical.VTIMEZONES["Europe/Berlin"]
        ),
    ),
    (
        ("2026-12-15 08:00", "2026-12-15 09:00"),
        ("2026-12-22 08:00", "2026-12-22 09:00"),
        ("2026-12-29 08:00", "2026-12-29 09:00"),
    ),
)

THIS_AND_FUTURE = Shape(
    "this-and-future",
    _calendar(
        "BEGIN:VEVENT",
        "UID:this-and-future",
        "DTSTAMP:20261201T090000Z",
        "DTSTART;TZID=Europe/Berlin:20261216T100000",
        "DTEND;TZID=Europe/Berlin:20261216T110000",
        "RRULE:FREQ=DAILY;COUNT=5",
        "SUMMARY:Daily check",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:this-and-future",
        "DTSTAMP:20261201T090000Z",
        "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20261218T100000",
        "DTSTART;TZID=Europe/Berlin:20261218T140000",
        "DTEND;TZID=Europe/Berlin:20261218T150000",
        "SUMMARY:Daily check (afternoons from now on)",
        "SEQUENCE:1",
        "END:VEVENT",
        zones=tuple(ical.VTIMEZONES["Europe/Berlin"]),
    ),
    (
        ("2026-12-16 09:00", "2026-12-16 10:00"),
        ("2026-12-17 09:00", "2026-12-17 10:00"),
        ("2026-12-18 13:00", "2026-12-18 14:00"),  # this one and every later one: four hours later
        ("2026-12-19 13:00", "2026-12-19 14:00"),
        ("2026-12-20 13:00", "2026-12-20 14:00"),
    ),
)

EXRULE = Shape(
    "exrule-rdates",
    _calendar(
        "BEGIN:VEVENT",
        "UID:exrule-rdates",
        "DTSTAMP:20261201T090000Z",
        "DTSTART;TZID=Europe/Berlin:20261222T100000",
        "DURATION:PT45M",
        "RRULE:FREQ=DAILY;COUNT=4",
        # RFC 2445's exception rule, deprecated by RFC 5545: would take out the 22nd and the 24th.
        # Busy time does not read it (erring towards busy); the copy drops it for clients.
        "EXRULE:FREQ=DAILY;INTERVAL=2;COUNT=2",
        "RDATE;TZID=Europe/Berlin:20261228T100000,20261229T160000",
        "SUMMARY:Rota",
        "END:VEVENT",
        zones=tuple(ical.VTIMEZONES["Europe/Berlin"]),
    ),
    (
        ("2026-12-22 09:00", "2026-12-22 09:45"),
        ("2026-12-23 09:00", "2026-12-23 09:45"),
        ("2026-12-24 09:00", "2026-12-24 09:45"),
        ("2026-12-25 09:00", "2026-12-25 09:45"),
        ("2026-12-28 09:00", "2026-12-28 09:45"),
        ("2026-12-29 15:00", "2026-12-29 15:45"),
    ),
)

OUT_OF_OFFICE = Shape(
    "out-of-office",
    _calendar(
        "BEGIN:VEVENT",
        "UID:out-of-office",
        "DTSTAMP:20261201T090000Z",
        "DTSTART:20261217T120000Z",
        "DTEND:20261217T130000Z",
        "SUMMARY:Away",
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
        "X-MICROSOFT-CDO-INTENDEDSTATUS:OOF",
        "X-MICROSOFT-CDO-ALLDAYEVENT:FALSE",
        "END:VEVENT",
    ),
    (("2026-12-17 12:00", "2026-12-17 13:00"),),
)

BARE_LF = Shape(
    "bare-lf-with-bom",
    "\ufeff"
    + _calendar(
        "BEGIN:VEVENT",
        "UID:bare-lf-with-bom",
        "DTSTAMP:20261201T090000Z",
        "DTSTART:20261217T150000Z",
        "DTEND:20261217T160000Z",
        "SUMMARY:Exported from somewhere",
        "END:VEVENT",
    ).replace("\r\n", "\n"),
    (("2026-12-17 15:00", "2026-12-17 16:00"),),
)

HUGE = Shape(
    "huge-description",
    _calendar(
        "BEGIN:VEVENT",
        "UID:huge-description",
        "DTSTAMP:20261201T090000Z",
        "DTSTART:20261218T080000Z",
        "DTEND:20261218T090000Z",
        "SUMMARY:Minutes",
        *_folded("DESCRIPTION", "Protokoll – Überblick ✓ 会议记录 " * 40_000),  # 1.5 MB, multi-byte
        "END:VEVENT",
    ),
    (("2026-12-18 08:00", "2026-12-18 09:00"),),
)

# RFC 5545 3.3.10: DTSTART is the first occurrence and counts toward COUNT, also where the
# rule's filters would not produce it: a Tuesday and two Mondays, not a third Monday on 4 January.
COUNT_OFF_RULE = Shape(
    "count-off-rule",
    _calendar(
        "BEGIN:VEVENT",
        "UID:count-off-rule",
        "DTSTAMP:20261201T090000Z",
        "DTSTART;TZID=Europe/Berlin:20261215T100000",
        "DTEND;TZID=Europe/Berlin:20261215T110000",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        "SUMMARY:Kick-off on a Tuesday, then Mondays",
        "END:VEVENT",
        zones=tuple(ical.VTIMEZONES["Europe/Berlin"]),
    ),
    (
        ("2026-12-15 09:00", "2026-12-15 10:00"),
        ("2026-12-21 09:00", "2026-12-21 10:00"),
        ("2026-12-28 09:00", "2026-12-28 10:00"),
    ),
)

# RFC 7529: Apple Calendar's lunar repeat. No library here walks Chinese months: DTSTART counts,
# and the copy (Radicale refuses RSCALE) keeps it and says later occurrences are not known.
LUNAR = Shape(
    "lunar-birthday",
    _calendar(
        "BEGIN:VEVENT",
        "UID:lunar-birthday",
        "DTSTAMP:20261201T090000Z",
        "DTSTART;TZID=Europe/Berlin:20261220T120000",
        "DTEND;TZID=Europe/Berlin:20261220T130000",
        "RRULE:RSCALE=CHINESE;FREQ=YEARLY",
        "SUMMARY:Grandmother's birthday",
        "END:VEVENT",
        zones=tuple(ical.VTIMEZONES["Europe/Berlin"]),
    ),
    (("2026-12-20 11:00", "2026-12-20 12:00"),),
)

GREGORIAN_SCALE = Shape(
    "gregorian-rscale",
    _calendar(
        "BEGIN:VEVENT",
        "UID:gregorian-rscale",
        "DTSTAMP:20261201T090000Z",
        "DTSTART;TZID=Europe/Berlin:20261221T140000",
        "DTEND;TZID=Europe/Berlin:20261221T143000",
        "RRULE:RSCALE=GREGORIAN;FREQ=WEEKLY;SKIP=OMIT;COUNT=3",
        "SUMMARY:Weekly, in the Gregorian scale said out loud",
        "END:VEVENT",
        zones=tuple(ical.VTIMEZONES["Europe/Berlin"]),
    ),
    (
        ("2026-12-21 13:00", "2026-12-21 13:30"),
        ("2026-12-28 13:00", "2026-12-28 13:30"),
        ("2027-01-04 13:00", "2027-01-04 13:30"),
    ),
)

SHAPES = (
    APPLE,
    ATTACHMENTS,
    COLON_ZONE,
    THIS_AND_FUTURE,
    EXRULE,
    OUT_OF_OFFICE,
    BARE_LF,
    HUGE,
    COUNT_OFF_RULE,
    LUNAR,
    GREGORIAN_SCALE,
)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    shapes = [(shape.name, shape.text) for shape in SHAPES]
    with mirrored_shapes(tmp_path_factory.mktemp("shapes"), "Shapes", shapes, CONFIG) as done:
        yield done


def library_starts(text: str) -> list[dt.datetime]:
    found = recurring_ical_events.of(icalendar.Calendar.from_ical(text)).between(*WINDOW)
    return sorted(e["DTSTART"].dt.astimezone(UTC) for e in found)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_the_emulator_holds_it_busy_time_counts_it_and_a_client_of_the_mirror_sees_it(
    mirrored: Mirrored, shape: Shape
) -> None:
    url = mirrored.emu.calendar_url(mirrored.cal_id) + f"{shape.name}.ics"
    served = requests.get(url, auth=(APPLE_ID, APP_PASSWORD), timeout=30)
    assert served.status_code == 200
    assert same_lines(served.content.decode()) == same_lines(shape.text)  # as iCloud: the same, line endings aside

    busy = BusySources(mirrored.engine.store, mirrored.engine.state, mirrored.engine.settings)
    found = busy.occurrences(*WINDOW)
    assert found is not None
    want = [(z(a), z(b)) for a, b in shape.busy]
    assert [(o.start, o.end) for o in found if o.uid == shape.uid] == want

    stored = mirrored.client_text(shape.uid)
    starts = [a for a, _ in want]
    assert radicale_starts(stored, WINDOW) == starts  # a client's time-range query on the mirror
    assert library_starts(stored) == starts  # a client expanding the copy itself


def _found_by_query(url: str, start: str, end: str) -> list[str]:
    """The hrefs a server's calendar-query with a time-range answers (RFC 4791 7.8)."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><D:getetag/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    answer = requests.request(
        "REPORT",
        url,
        data=body,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        auth=(APPLE_ID, APP_PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 207, answer.status_code
    return [href.split("/")[-1] for href in re.findall(r"<[^>]*href>([^<]*)<", answer.text)]


def test_a_radicale_server_counts_dtstart_toward_count(mirrored: Mirrored) -> None:
    """What the copy relies on, asked of a running Radicale (the emulator's store) rather than
    read in its code: the third Monday (4 January) is no occurrence, the second one is."""
    url = mirrored.emu.calendar_url(mirrored.cal_id)
    assert "count-off-rule.ics" in _found_by_query(url, "20261228T000000Z", "20261229T000000Z")
    assert "count-off-rule.ics" not in _found_by_query(url, "20270104T000000Z", "20270105T000000Z")


def test_status_says_what_is_not_known_of_a_lunar_rule(mirrored: Mirrored) -> None:
    compatible = mirrored.engine.state.copy_counts(mirrored.cal_id)["compatible"]
    assert any("another calendar scale" in reason and "not known" in reason for reason in compatible), compatible
