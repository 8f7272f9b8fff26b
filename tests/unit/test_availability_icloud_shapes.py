"""Valid iCloud shapes Radicale refuses, which must still count: master-less overrides, huge
COUNTs, RDATE periods and dates, EXDATE in every form, and Apple's travel time."""

from __future__ import annotations

import datetime as dt
import time
import tracemalloc
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av
from calmirror.raw_text import from_bytes
from calmirror.testing import ical
from tests import icloud_shapes

UTC = dt.UTC
ME = frozenset({"me@example.com"})
BERLIN = ical.VTIMEZONES["Europe/Berlin"]


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iv(a: str, b: str) -> tuple[dt.datetime, dt.datetime]:
    return z(a), z(b)


def cal(*events: list[str], head: list[str] | None = None) -> str:
    return ical.vcalendar(*events, head=head or [], prodid=ical.APPLE_PRODID)


def busy(
    text: str, window: tuple[str, str] = ("2026-12-01 00:00", "2027-01-01 00:00"), tz: str = "UTC", **rules: object
) -> list[tuple[dt.datetime, dt.datetime]]:
    source = av.Source("s", [av.parse_calendar(text)])
    options: dict[str, object] = {"me": ME, **rules}
    return av.busy_intervals([source], z(window[0]), z(window[1]), av.Rules(ZoneInfo(tz), **options))  # type: ignore[arg-type]


def skipped(text: str, window: tuple[str, str] = ("2026-12-01 00:00", "2027-01-01 00:00")) -> list[av.Skipped]:
    source = av.Source("s", [av.parse_calendar(text)])
    return av.skipped([source], z(window[0]), z(window[1]), av.Rules(ZoneInfo("UTC"), me=ME))


# --- invitations to single occurrences: overrides without a master ----------------------------------


def override(rid: str, start: str, end: str, *extra: str, uid: str = "series@organiser.example") -> list[str]:
    return [
        f"UID:{uid}",
        "DTSTAMP:20261101T000000Z",
        f"RECURRENCE-ID;TZID=Europe/Berlin:{rid}",
        f"DTSTART;TZID=Europe/Berlin:{start}",
        f"DTEND;TZID=Europe/Berlin:{end}",
        *extra,
    ]


def test_each_override_without_a_master_is_its_own_busy_occurrence() -> None:
    text = cal(
        override("20261208T100000", "20261208T100000", "20261208T110000"),
        override("20261215T100000", "20261215T160000", "20261215T173000"),  # moved by the organiser
        head=BERLIN,
    )
    assert busy(text) == [iv("2026-12-08 09:00", "2026-12-08 10:00"), iv("2026-12-15 15:00", "2026-12-15 16:30")]
    assert skipped(text) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("TRANSP:TRANSPARENT",), []),
        (("STATUS:CANCELLED",), []),
        (("ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com",), []),
        (("ATTENDEE;PARTSTAT=ACCEPTED:mailto:me@example.com",), [iv("2026-12-15 15:00", "2026-12-15 16:30")]),
        (("STATUS:TENTATIVE",), [iv("2026-12-15 15:00", "2026-12-15 16:30")]),
    ],
)
def test_master_less_overrides_are_judged_each_by_their_own_properties(
    extra: tuple[str, ...], expected: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    text = cal(
        override(
            "20261208T100000", "20261208T100000", "20261208T110000", "ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com"
        ),
        override("20261215T100000", "20261215T160000", "20261215T173000", *extra),
        head=BERLIN,
    )
    assert busy(text) == expected


def test_master_less_all_day_overrides_and_far_recurrence_ids() -> None:
    text = cal(
        ["UID:d", "DTSTAMP:20261101T000000Z", "RECURRENCE-ID;VALUE=DATE:20250101", "DTSTART;VALUE=DATE:20261224"],
        ["UID:d", "DTSTAMP:20261101T000000Z", "RECURRENCE-ID;VALUE=DATE:20290101", "DTSTART;VALUE=DATE:20261228",
         "DTEND;VALUE=DATE:20261230"],
    )  # fmt: skip
    assert busy(text) == [iv("2026-12-24 00:00", "2026-12-25 00:00"), iv("2026-12-28 00:00", "2026-12-30 00:00")]


# --- huge COUNT ------------------------------------------------------------------------------------


def count_rule(rule: str, start: str = "20260105T090000Z", end: str = "20260105T093000Z") -> str:
    return cal(["UID:c", "DTSTAMP:20260101T000000Z", f"DTSTART:{start}", f"DTEND:{end}", f"RRULE:{rule}"])


def test_daily_count_of_a_billion_over_a_year_is_exact_fast_and_small() -> None:
    text = count_rule("FREQ=DAILY;COUNT=1000000000")
    year = ("2026-06-01 00:00", "2027-06-01 00:00")
    av.clear_cache()
    started = time.process_time()  # CPU time: the bound is the engine's work, not the machine's load
    result = busy(text, window=year)
    took = time.process_time() - started
    av.clear_cache()
    tracemalloc.start()
    try:
        busy(text, window=year)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    day = dt.date(2026, 6, 1)
    assert result == [
        (dt.datetime.combine(day + dt.timedelta(n), dt.time(9, tzinfo=UTC)),
         dt.datetime.combine(day + dt.timedelta(n), dt.time(9, 30, tzinfo=UTC)))
        for n in range(365)
    ]  # fmt: skip
    assert took < 0.5, took
    assert peak < 50 * 2**20, peak


@pytest.mark.parametrize(
    ("rule", "window", "expected"),
    [
        # Mondays and Wednesdays; 2026-12-07 is a Monday
        (
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=1000000000",
            ("2026-12-07 00:00", "2026-12-14 00:00"),
            [iv("2026-12-07 09:00", "2026-12-07 09:30"), iv("2026-12-09 09:00", "2026-12-09 09:30")],
        ),
        (
            "FREQ=DAILY;BYMONTHDAY=1,15;COUNT=1000000000",
            ("2026-12-01 00:00", "2027-01-02 00:00"),
            [
                iv("2026-12-01 09:00", "2026-12-01 09:30"),
                iv("2026-12-15 09:00", "2026-12-15 09:30"),
                iv("2027-01-01 09:00", "2027-01-01 09:30"),
            ],
        ),
        (
            "FREQ=HOURLY;BYHOUR=9,14;BYDAY=TU;COUNT=1000000000",
            ("2026-12-07 00:00", "2026-12-14 00:00"),
            [iv("2026-12-08 09:00", "2026-12-08 09:30"), iv("2026-12-08 14:00", "2026-12-08 14:30")],
        ),
        (
            "FREQ=MINUTELY;INTERVAL=45;BYHOUR=9,10;COUNT=1000000000",
            ("2026-12-07 00:00", "2026-12-08 00:00"),
            # 45-minute lattice from 2026-01-05 09:00: 32 steps a day, so every day 09:00, 09:45, 10:30
            [
                iv("2026-12-07 09:00", "2026-12-07 09:30"),
                iv("2026-12-07 09:45", "2026-12-07 10:15"),
                iv("2026-12-07 10:30", "2026-12-07 11:00"),
            ],
        ),
        (
            "FREQ=SECONDLY;BYHOUR=9;BYMINUTE=0;BYSECOND=0;COUNT=1000000000",
            ("2026-12-07 00:00", "2026-12-09 00:00"),
            [iv("2026-12-07 09:00", "2026-12-07 09:30"), iv("2026-12-08 09:00", "2026-12-08 09:30")],
        ),
        (
            "FREQ=MONTHLY;BYDAY=2TU;COUNT=1000000000",
            ("2026-12-01 00:00", "2027-02-01 00:00"),
            [iv("2026-12-08 09:00", "2026-12-08 09:30"), iv("2027-01-12 09:00", "2027-01-12 09:30")],
        ),
    ],
)
def test_huge_count_variants_count_fully_and_fast(
    rule: str, window: tuple[str, str], expected: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    av.clear_cache()
    started = time.process_time()
    text = count_rule(rule)
    assert busy(text, window=window) == expected
    assert skipped(text, window) == []
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize("start", ["19900101T090000Z", "20260105T090000Z"])
def test_huge_count_from_long_ago_still_counts_today(start: str) -> None:
    for rule in ("FREQ=DAILY;BYDAY=MO,WE,FR;COUNT=1000000000", "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=7;COUNT=1000000000"):
        text = count_rule(rule, start, start[:9] + "093000Z")
        assert iv("2026-12-07 09:00", "2026-12-07 09:30") in busy(text), rule


def test_a_count_that_does_run_out_still_ends() -> None:
    # Mondays only, 2,000,000 of them: ends in the year 40,000-odd, so it counts now ...
    assert busy(count_rule("FREQ=WEEKLY;BYDAY=MO;COUNT=2000000"), window=("2026-12-07 00:00", "2026-12-08 00:00"))
    # ... while 100 Mondays from 2026-01-05 end on 2027-11-29
    assert busy(count_rule("FREQ=WEEKLY;BYDAY=MO;COUNT=100"), window=("2027-11-29 00:00", "2027-12-14 00:00")) == [
        iv("2027-11-29 09:00", "2027-11-29 09:30")
    ]


# --- RDATE and EXDATE in every form ----------------------------------------------------------------


def test_rdate_periods_explicit_end_and_duration_in_utc_and_a_zone() -> None:
    text = cal(
        [
            "UID:p",
            "DTSTAMP:20261101T000000Z",
            "DTSTART;TZID=Europe/Berlin:20261207T100000",
            "DTEND;TZID=Europe/Berlin:20261207T110000",
            "RDATE;VALUE=PERIOD:20261208T100000Z/20261208T140000Z,20261209T100000Z/PT2H",
            "RDATE;VALUE=PERIOD;TZID=Europe/Berlin:20261210T100000/PT30M,20261211T100000/20261211T101500",
        ],
        head=BERLIN,
    )
    assert busy(text) == [
        iv("2026-12-07 09:00", "2026-12-07 10:00"),
        iv("2026-12-08 10:00", "2026-12-08 14:00"),  # its own length, not the master's
        iv("2026-12-09 10:00", "2026-12-09 12:00"),
        iv("2026-12-10 09:00", "2026-12-10 09:30"),
        iv("2026-12-11 09:00", "2026-12-11 09:15"),
    ]
    assert skipped(text) == []


def test_rdate_dates_and_date_times_beside_a_rule() -> None:
    allday = cal(
        ["UID:a", "DTSTAMP:20261101T000000Z", "DTSTART;VALUE=DATE:20261201", "RRULE:FREQ=WEEKLY;COUNT=2",
         "RDATE;VALUE=DATE:20261220,20261222", "RDATE;VALUE=DATE:20261224"]
    )  # fmt: skip
    assert busy(allday) == [
        iv("2026-12-01 00:00", "2026-12-02 00:00"),
        iv("2026-12-08 00:00", "2026-12-09 00:00"),
        iv("2026-12-20 00:00", "2026-12-21 00:00"),
        iv("2026-12-22 00:00", "2026-12-23 00:00"),
        iv("2026-12-24 00:00", "2026-12-25 00:00"),
    ]
    timed = cal(
        ["UID:t", "DTSTAMP:20261101T000000Z", "DTSTART;TZID=Europe/Berlin:20261201T100000", "DURATION:PT1H",
         "RDATE;TZID=Europe/Berlin:20261203T100000,20261204T120000", "RDATE:20261205T080000Z"],
        head=BERLIN,
    )  # fmt: skip
    assert busy(timed) == [
        iv("2026-12-01 09:00", "2026-12-01 10:00"),
        iv("2026-12-03 09:00", "2026-12-03 10:00"),
        iv("2026-12-04 11:00", "2026-12-04 12:00"),
        iv("2026-12-05 08:00", "2026-12-05 09:00"),
    ]


def test_exdate_in_every_form() -> None:
    text = cal(
        ["UID:x", "DTSTAMP:20261101T000000Z", "DTSTART;TZID=Europe/Berlin:20261201T100000",
         "DTEND;TZID=Europe/Berlin:20261201T110000", "RRULE:FREQ=DAILY;COUNT=8",
         "EXDATE;TZID=Europe/Berlin:20261202T100000,20261203T100000",  # zoned, two on one line
         "EXDATE:20261204T090000Z",  # the same instant in UTC
         "EXDATE;VALUE=DATE:20261205",  # a whole day
         "EXDATE;TZID=Europe/Berlin:20261206T103000"],  # no such occurrence: removes nothing
        head=BERLIN,
    )  # fmt: skip
    assert busy(text) == [
        iv("2026-12-01 09:00", "2026-12-01 10:00"),
        iv("2026-12-06 09:00", "2026-12-06 10:00"),
        iv("2026-12-07 09:00", "2026-12-07 10:00"),
        iv("2026-12-08 09:00", "2026-12-08 10:00"),
    ]


# --- travel time -------------------------------------------------------------------------------------


TRAVEL = "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M"


def test_travel_time_starts_busy_time_earlier_and_can_be_switched_off() -> None:
    text = cal(["UID:t", "DTSTAMP:20261101T000000Z", "DTSTART:20261207T100000Z", "DTEND:20261207T110000Z", TRAVEL])
    assert busy(text) == [iv("2026-12-07 09:30", "2026-12-07 11:00")]
    assert busy(text, travel_time=False) == [iv("2026-12-07 10:00", "2026-12-07 11:00")]
    # an event just after the window still blocks the window's end through its travel time
    assert busy(text, window=("2026-12-07 00:00", "2026-12-07 09:45")) == [iv("2026-12-07 09:30", "2026-12-07 09:45")]


def test_travel_time_per_occurrence_and_per_override() -> None:
    text = cal(
        ["UID:s", "DTSTAMP:20261101T000000Z", "DTSTART;TZID=Europe/Berlin:20261207T100000",
         "DTEND;TZID=Europe/Berlin:20261207T110000", "RRULE:FREQ=WEEKLY;COUNT=3",
         "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT15M"],
        ["UID:s", "DTSTAMP:20261101T000000Z", "RECURRENCE-ID;TZID=Europe/Berlin:20261214T100000",
         "DTSTART;TZID=Europe/Berlin:20261214T100000", "DTEND;TZID=Europe/Berlin:20261214T110000",
         "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT1H"],
        head=BERLIN,
    )  # fmt: skip
    assert busy(text) == [
        iv("2026-12-07 08:45", "2026-12-07 10:00"),
        iv("2026-12-14 08:00", "2026-12-14 10:00"),
        iv("2026-12-21 08:45", "2026-12-21 10:00"),
    ]
    # the window ends inside the third occurrence's travel time: it is found all the same
    assert busy(text, window=("2026-12-21 00:00", "2026-12-21 08:50")) == [iv("2026-12-21 08:45", "2026-12-21 08:50")]


def test_travel_time_is_ignored_on_all_day_and_free_events() -> None:
    allday = cal(["UID:a", "DTSTAMP:20261101T000000Z", "DTSTART;VALUE=DATE:20261207", TRAVEL])
    assert busy(allday) == [iv("2026-12-07 00:00", "2026-12-08 00:00")]
    free = cal(
        ["UID:f", "DTSTAMP:20261101T000000Z", "DTSTART:20261207T100000Z", "DURATION:PT1H", "TRANSP:TRANSPARENT", TRAVEL]
    )
    assert busy(free) == []


@pytest.mark.parametrize("value", ["X-APPLE-TRAVEL-DURATION:PT45M", "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT45M"])
def test_travel_time_with_or_without_a_value_type(value: str) -> None:
    text = cal(["UID:t", "DTSTAMP:20261101T000000Z", "DTSTART:20261207T100000Z", "DURATION:PT1H", value])
    assert busy(text) == [iv("2026-12-07 09:15", "2026-12-07 11:00")]


@pytest.mark.parametrize("value", ["-PT30M", "PT0S", "soon"])
def test_odd_travel_times_are_ignored(value: str) -> None:
    text = cal(["UID:t", "DTSTAMP:20261101T000000Z", "DTSTART:20261207T100000Z", "DURATION:PT1H",
                f"X-APPLE-TRAVEL-DURATION:{value}"])  # fmt: skip
    assert busy(text) == [iv("2026-12-07 10:00", "2026-12-07 11:00")]


def test_the_guard_sees_travel_time_of_both_sides() -> None:
    stored = cal(["UID:s", "DTSTAMP:20261101T000000Z", "DTSTART:20261207T100000Z", "DTEND:20261207T110000Z", TRAVEL])
    candidate = av.parse_calendar(
        cal(["UID:new", "DTSTAMP:20261101T000000Z", "DTSTART:20261207T090000Z", "DTEND:20261207T094500Z"])
    )
    sources = [av.Source("s", [av.parse_calendar(stored)])]
    assert av.overlaps(candidate, sources, av.Rules(ZoneInfo("UTC"))) == [iv("2026-12-07 09:30", "2026-12-07 09:45")]
    assert av.overlaps(candidate, sources, av.Rules(ZoneInfo("UTC"), travel_time=False)) == []


def test_a_count_no_bounded_walk_can_reach_is_counted_conservatively_not_skipped() -> None:
    # 60 a day from 2020: COUNT=100000 runs out in mid 2024, further than the engine walks to
    # find out; walking on without the COUNT can only add busy time, and says so.
    text = count_rule("FREQ=MINUTELY;BYHOUR=9;COUNT=100000", "20200106T090000Z", "20200106T090100Z")
    window = ("2026-12-07 00:00", "2026-12-08 00:00")
    assert skipped(text, window) == []
    assert busy(text, window=window) == [iv("2026-12-07 09:00", "2026-12-07 10:00")]
    source = av.Source("s", [av.parse_calendar(text)])
    found = av.busy_occurrences([source], z(window[0]), z(window[1]), av.Rules(ZoneInfo("UTC")))
    assert found and all(o.approximate for o in found)


def test_a_utc_time_never_matches_another_occurrences_wall_time() -> None:
    # 10:00 and 11:00 Berlin each day; 11:00 Berlin is 10:00 UTC, the other one's wall time.
    series = [
        "UID:x", "DTSTAMP:20261101T000000Z", "DTSTART;TZID=Europe/Berlin:20261201T100000", "DURATION:PT30M",
        "RRULE:FREQ=DAILY;COUNT=4;BYHOUR=10,11",
    ]  # fmt: skip
    moved = [
        "UID:x", "DTSTAMP:20261101T000000Z", "RECURRENCE-ID;TZID=Europe/Berlin:20261201T110000",
        "DTSTART;TZID=Europe/Berlin:20261201T150000", "DURATION:PT30M",
    ]  # fmt: skip
    assert busy(cal(series, moved, head=BERLIN), window=("2026-12-01 00:00", "2026-12-02 00:00")) == [
        iv("2026-12-01 09:00", "2026-12-01 09:30"),  # the 10:00 instance stays
        iv("2026-12-01 14:00", "2026-12-01 14:30"),  # the 11:00 instance, moved to 15:00
    ]
    excluded = cal([*series, "EXDATE;TZID=Europe/Berlin:20261202T110000"], head=BERLIN)
    assert busy(excluded, window=("2026-12-02 00:00", "2026-12-03 00:00")) == [
        iv("2026-12-02 09:00", "2026-12-02 09:30")
    ]


# --- rules in another calendar scale (RFC 7529) ---------------------------------------------------


def test_a_lunar_rule_counts_dtstart_and_its_rdates_and_nothing_is_skipped() -> None:
    """No library here walks Chinese months: what can be known counts (DTSTART, RDATEs)."""
    window = ("2026-12-01 00:00", "2029-01-01 00:00")
    assert busy(icloud_shapes.RSCALE_CHINESE, window) == [
        iv("2027-02-06 00:00", "2027-02-07 00:00"),
        iv("2027-02-10 00:00", "2027-02-11 00:00"),
    ]
    assert skipped(icloud_shapes.RSCALE_CHINESE, window) == []


def test_a_gregorian_rscale_is_a_plain_rule() -> None:
    """SKIP=BACKWARD moves 31 February to the 28th (RFC 7529), and that one counts toward COUNT."""
    window = ("2026-12-01 00:00", "2027-12-01 00:00")
    assert [a for a, _ in busy(icloud_shapes.RSCALE_GREGORIAN_SKIP, window)] == [
        z("2026-12-31 09:00"),
        z("2027-01-31 09:00"),
        z("2027-02-28 09:00"),
        z("2027-03-31 09:00"),
    ]


def test_a_date_with_a_tzid_is_all_day_in_the_configured_zone() -> None:
    """RFC 5545 3.3.4: a DATE has no zone; icalendar read it as midnight in the TZID's zone (a
    timed 24 hours, in Berlin for someone in New York)."""
    text = icloud_shapes.DATE_WITH_TZID
    assert busy(text, tz="America/New_York") == [iv("2026-12-10 05:00", "2026-12-11 05:00")]
    source = av.Source("s", [av.parse_calendar(text)], allday_busy=False)
    window = (z("2026-12-01 00:00"), z("2027-01-01 00:00"))
    assert av.busy_intervals([source], *window, av.Rules(ZoneInfo("UTC"))) == []  # all-day: the switch applies


def test_a_summary_with_bytes_that_are_not_utf8_is_shown_readable() -> None:
    """iCloud's exact text keeps an old client's Windows-1252 byte (`raw_text`); what the engine
    answers a person (the week, `--json`, stdout) is valid UTF-8."""
    raw = cal(["UID:w", "DTSTAMP:20261101T000000Z", "DTSTART:20261201T100000Z", "DURATION:PT1H", "SUMMARY:Caf@"])
    text = from_bytes(raw.encode().replace(b"Caf@", b"Caf\xe9"))
    source = av.Source("s", [av.parse_calendar(text)])
    found = av.busy_occurrences([source], z("2026-12-01 00:00"), z("2026-12-02 00:00"), av.Rules(ZoneInfo("UTC")))
    assert [o.summary for o in found] == ["Café"]
