"""Occurrence lengths across DST changes, as RFC 5545 counts them, worked out by hand.

§3.3.6: a DURATION in days and weeks is nominal (a day is a calendar day), one in hours,
minutes and seconds is exact (elapsed time); §3.8.5.3: DTEND - DTSTART applies to every
occurrence as that exact duration. recurring-ical-events adds both in wall-clock time. In New
York the clocks go back at 02:00 EDT on 1 November 2026 (01:00-02:00 happens twice) and on to
EDT at 02:00 EST on 14 March 2027. The engine and the differential test's oracle must agree
with each expectation.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av
from calmirror.availability.durations import mark_exact_durations
from tests import busy_oracle as oracle

UTC = dt.UTC


def at(day: str, time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=UTC)


def vevent(start: str, length: str, rule: str = "") -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "BEGIN:VEVENT",
        "UID:dst",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART;TZID=America/New_York:{start}",
        length,
        *([rule] if rule else []),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


CASES = [
    # one hour from the first 01:30 of the night the clocks go back ends at the second 01:30
    (vevent("20261101T013000", "DURATION:PT1H"), [(at("2026-11-01", "05:30"), at("2026-11-01", "06:30"))]),
    # 24 hours from noon the day before is 11:00 after the change; a day is noon to noon
    (vevent("20261031T120000", "DURATION:PT24H"), [(at("2026-10-31", "16:00"), at("2026-11-01", "16:00"))]),
    (vevent("20261031T120000", "DURATION:P1D"), [(at("2026-10-31", "16:00"), at("2026-11-01", "17:00"))]),
    (vevent("20261031T120000", "DURATION:PT1440M"), [(at("2026-10-31", "16:00"), at("2026-11-01", "16:00"))]),
    # a day and an hour: the day nominal, the hour exact
    (vevent("20261031T120000", "DURATION:P1DT1H"), [(at("2026-10-31", "16:00"), at("2026-11-01", "18:00"))]),
    # spring: one hour from 01:30 EST is 03:30 EDT, as wall-clock arithmetic also finds
    (vevent("20270314T013000", "DURATION:PT1H"), [(at("2027-03-14", "06:30"), at("2027-03-14", "07:30"))]),
    (vevent("20270313T120000", "DURATION:PT24H"), [(at("2027-03-13", "17:00"), at("2027-03-14", "17:00"))]),
    # a daily 01:30-02:30 (DTEND): every occurrence lasts one elapsed hour, 1 November's too
    (
        vevent("20261031T013000", "DTEND;TZID=America/New_York:20261031T023000", "RRULE:FREQ=DAILY;COUNT=3"),
        [
            (at("2026-10-31", "05:30"), at("2026-10-31", "06:30")),
            (at("2026-11-01", "05:30"), at("2026-11-01", "06:30")),
            (at("2026-11-02", "06:30"), at("2026-11-02", "07:30")),
        ],
    ),
    # a daily 00:00-03:00 first held on the night the clocks go back: four elapsed hours,
    # and so every later occurrence too (wall-clock arithmetic made the next one three)
    (
        vevent("20261101T000000", "DTEND;TZID=America/New_York:20261101T030000", "RRULE:FREQ=DAILY;COUNT=2"),
        [
            (at("2026-11-01", "04:00"), at("2026-11-01", "08:00")),
            (at("2026-11-02", "05:00"), at("2026-11-02", "09:00")),
        ],
    ),
    # a daily PT1H from years back (the engine rebases the rule near the window)
    (
        vevent("20200101T013000", "DURATION:PT1H", "RRULE:FREQ=DAILY"),
        [
            (at("2026-10-31", "05:30"), at("2026-10-31", "06:30")),
            (at("2026-11-01", "05:30"), at("2026-11-01", "06:30")),
            (at("2026-11-02", "06:30"), at("2026-11-02", "07:30")),
        ],
    ),
    # a weekly P1D from years back, on Saturdays at noon: 25 hours across the change
    (
        vevent("20200104T120000", "DURATION:P1D", "RRULE:FREQ=WEEKLY"),
        [(at("2026-10-31", "16:00"), at("2026-11-01", "17:00"))],
    ),
]
WINDOW = (at("2026-10-30", "12:00"), at("2026-11-03", "00:00"))
SPRING = (at("2027-03-13", "00:00"), at("2027-03-15", "00:00"))


@pytest.mark.parametrize(("text", "want"), CASES)
def test_the_engine_counts_durations_as_rfc_5545_does(text: str, want: list[tuple[dt.datetime, dt.datetime]]) -> None:
    window = SPRING if "2027" in text else WINDOW
    rules = av.Rules(tz=ZoneInfo("UTC"), me=frozenset(), tentative_busy=True)
    source = av.Source("s", [av.parse_calendar(text)])
    got = [(a, b) for a, b in av.busy_intervals([source], *window, rules)]
    assert got == oracle.merge(want)


@pytest.mark.parametrize(("text", "want"), CASES)
def test_the_oracle_counts_durations_as_rfc_5545_does(text: str, want: list[tuple[dt.datetime, dt.datetime]]) -> None:
    window = SPRING if "2027" in text else WINDOW
    assert oracle.busy([text], *window, ZoneInfo("UTC"), tentative_busy=True) == oracle.merge(want)


def test_only_a_duration_of_a_day_or_more_in_hours_is_marked() -> None:
    assert mark_exact_durations("DURATION:PT1H\r\n") == "DURATION:PT1H\r\n"
    assert mark_exact_durations("DURATION:P1D\r\n") == "DURATION:P1D\r\n"
    marked = mark_exact_durations("DURATION:PT24H\r\nDURATION:P1DT23H59M60S\r\n")
    assert marked == (
        "DURATION;X-CALMIRROR-EXACT-SECONDS=86400:PT24H\r\nDURATION;X-CALMIRROR-EXACT-SECONDS=86400:P1DT23H59M60S\r\n"
    )
