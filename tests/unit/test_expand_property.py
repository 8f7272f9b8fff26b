"""`local.expand` against the availability engine on generated series: the instances a
client's `expand` gets over a window cover exactly the busy time the engine counts there.

The engine reads floating times and dates in its configured zone, the server's time-range
logic in UTC, so the engine runs with UTC here and both read them alike. A real Radicale item
is expanded through the function Radicale's REPORT calls (`tests/integration/test_expand.py`
does the same over HTTP for hand-picked shapes)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import given, settings
from hypothesis import strategies as st
from radicale import item as radicale_item

from calmirror.availability import engine as av
from calmirror.availability.intervals import merge
from calmirror.local import expand
from calmirror.testing import ical

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
FORMS = ("utc", "zoned", "floating", "date")


@dataclass(frozen=True)
class Series:
    form: str
    start: dt.datetime  # wall time (UTC for "utc"), midnight for "date"
    minutes: int  # length; whole days for "date"
    freq: str
    interval: int
    count: int
    exdates: tuple[int, ...]  # occurrence indexes taken out
    moved: tuple[int, int] | None  # (occurrence index, hours later) of one override

    def value(self, at: dt.datetime) -> str:
        if self.form == "date":
            return f";VALUE=DATE:{at:%Y%m%d}"
        if self.form == "zoned":
            return f";TZID=Europe/Berlin:{at:%Y%m%dT%H%M%S}"
        return f":{at:%Y%m%dT%H%M%S}" + ("Z" if self.form == "utc" else "")

    def occurrence(self, index: int) -> dt.datetime:
        step = dt.timedelta(days=self.interval * (7 if self.freq == "WEEKLY" else 1))
        return self.start + index * step

    def text(self) -> str:
        length = dt.timedelta(days=self.minutes) if self.form == "date" else dt.timedelta(minutes=self.minutes)
        master = [
            "UID:series@test",
            "DTSTAMP:20261101T000000Z",
            "DTSTART" + self.value(self.start),
            "DTEND" + self.value(self.start + length),
            f"RRULE:FREQ={self.freq};INTERVAL={self.interval};COUNT={self.count}",
            *("EXDATE" + self.value(self.occurrence(i)) for i in self.exdates),
        ]
        events = [master]
        if self.moved is not None:
            index, hours = self.moved
            shift = dt.timedelta(days=hours) if self.form == "date" else dt.timedelta(hours=hours)
            at = self.occurrence(index) + shift
            events.append(
                [
                    "UID:series@test",
                    "DTSTAMP:20261101T000000Z",
                    "RECURRENCE-ID" + self.value(self.occurrence(index)),
                    "DTSTART" + self.value(at),
                    "DTEND" + self.value(at + length),
                ]
            )
        head = ical.VTIMEZONES["Europe/Berlin"] if self.form == "zoned" else []
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//expand//EN", *head]
        for body in events:
            lines += ["BEGIN:VEVENT", *body, "END:VEVENT"]
        return "\r\n".join([*lines, "END:VCALENDAR", ""])


@st.composite
def series(draw: st.DrawFn) -> Series:
    form = draw(st.sampled_from(FORMS))
    day = dt.datetime(2027, 3, 1) + dt.timedelta(days=draw(st.integers(0, 60)))  # across 28 March (DST)
    start = day if form == "date" else day + dt.timedelta(minutes=15 * draw(st.integers(0, 95)))
    count = draw(st.integers(1, 25))
    exdates = tuple(sorted(draw(st.sets(st.integers(1, count - 1), max_size=3)))) if count > 1 else ()
    moved = None
    free = [i for i in range(count) if i not in exdates]
    if draw(st.booleans()):
        moved = (draw(st.sampled_from(free)), draw(st.integers(-30, 30)))
    return Series(
        form=form,
        start=start,
        minutes=draw(st.integers(1, 3)) if form == "date" else draw(st.integers(1, 16)) * 15,
        freq=draw(st.sampled_from(("DAILY", "WEEKLY"))),
        interval=draw(st.integers(1, 3)),
        count=count,
        exdates=exdates,
        moved=moved,
    )


def expanded(text: str, window: tuple[dt.datetime, dt.datetime]) -> list[tuple[dt.datetime, dt.datetime]]:
    item = radicale_item.Item(collection_path="user/calendar", text=text)
    element, _ = expand.expand(ET.Element("calendar-data"), item, *window)
    if not element.text:
        return []
    spans = []
    for event in icalendar.Calendar.from_ical(element.text).walk("VEVENT"):
        assert not any(name in event for name in ("RRULE", "RDATE", "EXDATE", "EXRULE"))
        assert "RECURRENCE-ID" in event
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        spans.append((_utc(start), _utc(end)))
    assert "VTIMEZONE" not in element.text
    return merge((max(a, window[0]), min(b, window[1])) for a, b in spans)


def _utc(value: dt.date) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    assert value.tzinfo is None or value.utcoffset() == dt.timedelta(0)  # UTC or floating, never a zone
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@settings(max_examples=150, deadline=None)
@given(series(), st.integers(0, 120), st.integers(1, 60))
def test_expanded_instances_cover_the_busy_time_the_engine_counts(s: Series, offset: int, days: int) -> None:
    window = (
        dt.datetime(2027, 2, 20, tzinfo=UTC) + dt.timedelta(days=offset),
        dt.datetime(2027, 2, 20, tzinfo=UTC) + dt.timedelta(days=offset + days),
    )
    text = s.text()
    want = av.busy_intervals([av.Source("s", [av.parse_calendar(text)])], *window, av.Rules(ZoneInfo("UTC")))
    assert expanded(text, window) == [tuple(i) for i in want]
