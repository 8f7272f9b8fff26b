"""A client's calendar-query with `expand` (RFC 4791 §9.6.5) over real HTTP: every instance
the busy time counts comes back as one VEVENT without recurrence properties, zoned times in
UTC, floating times still floating, dates as dates, no VTIMEZONE (`local.expand`)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from datetime import date
from zoneinfo import ZoneInfo

import icalendar
import pytest
import requests

from calmirror.availability import engine as av
from calmirror.compat import compatible_copy, horizon_for
from calmirror.local import LocalServer, LocalStore
from calmirror.local.radicale_config import MAX_EXPAND_OCCURRENCE
from calmirror.testing import LOCAL_USER, ical

CALDAV = "{urn:ietf:params:xml:ns:caldav}"
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 10, tzinfo=dt.UTC))
BERLIN = ZoneInfo("Europe/Berlin")


def calendar(*events: list[str], head: list[str] | None = None) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//expand//EN", *(head or [])]
    for body in events:
        lines += ["BEGIN:VEVENT", "DTSTAMP:20261101T000000Z", *body, "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def put(served: tuple[LocalServer, LocalStore, requests.Session], collection: str, text: str) -> None:
    server, _, http = served
    answer = http.put(
        f"{server.url}{LOCAL_USER}/{collection}/one.ics", data=text.encode(), headers={"Content-Type": "text/calendar"}
    )
    assert answer.status_code == 201, answer.text


def expanded(served: tuple[LocalServer, LocalStore, requests.Session], collection: str) -> list[icalendar.Event]:
    return query_expanded(served, collection, WINDOW)


def query_expanded(
    served: tuple[LocalServer, LocalStore, requests.Session], collection: str, window: tuple[dt.datetime, dt.datetime]
) -> list[icalendar.Event]:
    """The VEVENTs one expanding calendar-query over `window` answers with (a 207 required)."""
    server, _, http = served
    start, end = (t.strftime("%Y%m%dT%H%M%SZ") for t in window)
    query = f"""<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
    <C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""
    answer = http.request("REPORT", f"{server.url}{LOCAL_USER}/{collection}/", data=query, headers={"Depth": "1"})
    assert answer.status_code == 207, answer.text
    events: list[icalendar.Event] = []
    for data in ET.fromstring(answer.content).iter(f"{CALDAV}calendar-data"):
        text = data.text or ""
        assert "VTIMEZONE" not in text and "TZID" not in text
        for line in ("RRULE", "RDATE", "EXDATE", "EXRULE"):
            assert f"\n{line}" not in text
        events += icalendar.Calendar.from_ical(text).walk("VEVENT")
    return sorted(events, key=lambda e: str(e.decoded("DTSTART")))


def busy(
    text: str, zone: ZoneInfo, window: tuple[dt.datetime, dt.datetime] = WINDOW
) -> list[tuple[dt.datetime, dt.datetime]]:
    rules = av.Rules(zone)
    intervals = av.busy_intervals([av.Source("s", [av.parse_calendar(text)])], *window, rules)
    return [(start, end) for start, end in intervals]


def placed(events: list[icalendar.Event], zone: ZoneInfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """The instances as the engine places them: floating wall time in the configured zone."""

    def at(value: dt.datetime) -> dt.datetime:
        return (value.replace(tzinfo=zone) if value.tzinfo is None else value).astimezone(dt.UTC)

    def end(e: icalendar.Event) -> dt.datetime:
        return at(e.decoded("DTEND") if "DTEND" in e else e.decoded("DTSTART") + e.decoded("DURATION"))

    return [(at(e.decoded("DTSTART")), end(e)) for e in events]


FLOATING = calendar(
    ["UID:floating@test", "SUMMARY:Floating", "DTSTART:20261201T090000", "DTEND:20261201T100000",
     "RRULE:FREQ=DAILY;COUNT=5", "EXDATE:20261202T090000"],
    ["UID:floating@test", "SUMMARY:Moved", "RECURRENCE-ID:20261203T090000",
     "DTSTART:20261203T150000", "DTEND:20261203T160000"],
)  # fmt: skip


@pytest.mark.parametrize("collection", ["appointments", "blocked"])
def test_a_floating_series_expands_floating_and_as_busy_time_counts_it(
    served: tuple[LocalServer, LocalStore, requests.Session], collection: str
) -> None:
    put(served, collection, FLOATING)
    events = expanded(served, collection)  # Radicale 3.9 answered 500 for the whole calendar
    starts = [e.decoded("DTSTART") for e in events]
    assert starts == [dt.datetime(2026, 12, d, h) for d, h in ((1, 9), (3, 15), (4, 9), (5, 9))]
    assert all(e.decoded("DTSTART").tzinfo is None and e.decoded("DTEND").tzinfo is None for e in events)
    assert [e.decoded("RECURRENCE-ID") for e in events] == [dt.datetime(2026, 12, d, 9) for d in (1, 3, 4, 5)]
    assert events[1]["SUMMARY"] == "Moved"
    assert placed(events, BERLIN) == busy(FLOATING, BERLIN)


SINGLE = calendar(
    ["UID:single@test", "DTSTART;TZID=Europe/Berlin:20261202T090000", "DTEND;TZID=Europe/Berlin:20261202T100000"],
    head=ical.VTIMEZONES["Europe/Berlin"],
)
SERIES = calendar(
    ["UID:series@test", "DTSTART;TZID=Europe/Berlin:20261111T090000", "DTEND;TZID=Europe/Berlin:20261111T100000",
     "RRULE:FREQ=DAILY;UNTIL=20261205T000000Z"],
    ["UID:series@test", "RECURRENCE-ID;TZID=Europe/Berlin:20261120T090000",
     "DTSTART;TZID=Europe/Berlin:20261208T120000", "DTEND;TZID=Europe/Berlin:20261208T130000"],
    head=ical.VTIMEZONES["Europe/Berlin"],
)  # fmt: skip


def test_zoned_times_come_back_in_utc_without_their_zone(
    served: tuple[LocalServer, LocalStore, requests.Session],
) -> None:
    server, _, http = served
    for name, text in (("single", SINGLE), ("series", SERIES)):
        answer = http.put(f"{server.url}{LOCAL_USER}/appointments/{name}.ics", data=text.encode())
        assert answer.status_code == 201, answer.text
    events = expanded(served, "appointments")
    starts = [e.decoded("DTSTART") for e in events]
    assert all(s.utcoffset() == dt.timedelta(0) for s in starts)
    # 1-4 December of the series, the single event, and the override moved in from 20 November
    assert [s.strftime("%d %H:%M") for s in starts] == [
        "01 08:00",
        "02 08:00",
        "02 08:00",
        "03 08:00",
        "04 08:00",
        "08 11:00",
    ]
    assert sorted(placed(events, BERLIN)) == sorted(busy(SINGLE, BERLIN) + busy(SERIES, BERLIN))


def test_an_all_day_series_expands_to_dates(served: tuple[LocalServer, LocalStore, requests.Session]) -> None:
    text = calendar(
        ["UID:days@test", "DTSTART;VALUE=DATE:20261130", "DTEND;VALUE=DATE:20261201",
         "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6", "EXDATE;VALUE=DATE:20261202"],
    )  # fmt: skip
    put(served, "appointments", text)
    events = expanded(served, "appointments")
    assert [e.decoded("DTSTART") for e in events] == [date(2026, 12, 7), date(2026, 12, 9)]
    assert [e.decoded("DTEND") for e in events] == [date(2026, 12, 8), date(2026, 12, 10)]


def test_a_compatible_copy_of_a_period_series_expands_to_every_period(
    served: tuple[LocalServer, LocalStore, requests.Session],
) -> None:
    """RDATE;VALUE=PERIOD: Radicale holds a copy of RDATEs plus overrides; its own expand
    showed only the copy's DTSTART, with the RDATE list still on it."""
    exact = calendar(
        ["UID:periods@test", "DTSTART:20261201T090000Z", "DTEND:20261201T100000Z",
         "RDATE;VALUE=PERIOD:20261203T090000Z/20261203T113000Z,20261206T140000Z/PT2H"],
    )  # fmt: skip
    copy = compatible_copy(exact, "periods.ics", horizon_for(date.today()), MAX_EXPAND_OCCURRENCE)
    assert copy is not None
    _, store, _ = served
    assert store.apply_mirror("work", [("periods.ics", copy.text)], []) == []
    events = expanded(served, "icloud-work")
    assert (
        placed(events, BERLIN)
        == busy(exact, BERLIN)
        == [
            (dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)),
            (dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC), dt.datetime(2026, 12, 3, 11, 30, tzinfo=dt.UTC)),
            (dt.datetime(2026, 12, 6, 14, tzinfo=dt.UTC), dt.datetime(2026, 12, 6, 16, tzinfo=dt.UTC)),
        ]
    )
