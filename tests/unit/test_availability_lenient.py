"""An event counts although something beside it is malformed: a bad value in an alarm, a time
zone block, another component or one line icalendar cannot split used to make the whole object
unreadable (busy time lost), and a broken EXDATE or travel time the whole event."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av

UTC = dt.UTC
HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
EVENT = "BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261210T100000Z\r\nDTEND:20261210T110000Z\r\n"
ALARM = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\n{}END:VALARM\r\n"
ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Broken\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\nTZOFFSETFROM:{}\r\n"
    "TZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def obj(before: str = "", inside: str = "") -> str:
    return HEAD + before + EVENT + inside + "END:VEVENT\r\nEND:VCALENDAR\r\n"


SHAPES = {
    "an alarm's TRIGGER that is no duration": obj(inside=ALARM.format("TRIGGER:xyz\r\n")),
    "an empty TRIGGER": obj(inside=ALARM.format("TRIGGER:\r\n")),
    "an alarm's ACKNOWLEDGED that is no date": obj(inside=ALARM.format("TRIGGER:-PT5M\r\nACKNOWLEDGED:no\r\n")),
    "a time zone offset that is no offset": obj(before=ZONE.format("+01h")),
    "a calendar line that cannot be split": obj(before='X-WR-CALNAME;X="a:b\r\n'),
    "a to-do beside it with a bad DUE": obj(before="BEGIN:VTODO\r\nUID:t\r\nDUE:soon\r\nEND:VTODO\r\n"),
    "a broken EXDATE": obj(inside="EXDATE:2026\r\n"),
    "a broken travel time": obj(inside="X-APPLE-TRAVEL-DURATION;VALUE=DURATION:soon\r\n"),
}


@pytest.mark.parametrize("text", SHAPES.values(), ids=SHAPES.keys())
def test_the_event_counts_beside_a_malformed_part(text: str) -> None:
    rules = av.Rules(tz=ZoneInfo("Europe/Berlin"), me=frozenset(), tentative_busy=True)
    source = av.Source("s", [av.parse_calendar(text)])
    busy = av.busy_intervals(
        [source], dt.datetime(2026, 12, 10, tzinfo=UTC), dt.datetime(2026, 12, 11, tzinfo=UTC), rules
    )
    assert busy == [(dt.datetime(2026, 12, 10, 10, tzinfo=UTC), dt.datetime(2026, 12, 10, 11, tzinfo=UTC))]


@pytest.mark.parametrize("text", ["<html><body>502 Bad Gateway</body></html>", "just: words\r\n", HEAD])
def test_what_is_not_icalendar_is_still_refused(text: str) -> None:
    with pytest.raises(av.CalendarParseError):
        av.parse_calendar(text)


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_a_value_holding_a_separator_stays_one_line(separator: str) -> None:
    """Read again without the bad alarm, a description holding a character `str.splitlines`
    breaks at stays one value: it neither ends the line nor starts a property of its own."""
    text = obj(inside=f"DESCRIPTION:see{separator}DTSTART:20261210T080000Z\r\n" + ALARM.format("TRIGGER:xyz\r\n"))
    test_the_event_counts_beside_a_malformed_part(text)
    [event] = av.parse_calendar(text).walk("VEVENT")
    assert str(event["DESCRIPTION"]) == f"see{separator}DTSTART:20261210T080000Z"
