"""The availability engine on the iCloud-shaped sample calendars.

Expected intervals are written out by hand from the fixture README (UTC), not computed,
so a regression in recurrence handling shows up as a readable diff of times.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"
UTC = dt.UTC
WINDOW = (dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2027, 4, 1, tzinfo=UTC))
ME = frozenset({"me@example.com"})


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iv(start: str, end: str) -> tuple[dt.datetime, dt.datetime]:
    return z(start), z(end)


def weekly(first: str, times: tuple[str, str], count: int, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Dates a week apart, as hand-checkable (start, end) strings; used only for long runs."""
    day = dt.date.fromisoformat(first)
    out = []
    for _ in range(count):
        if day.isoformat() not in skip:
            out.append((f"{day} {times[0]}", f"{day} {times[1]}"))
        day += dt.timedelta(days=7)
    return out


def source(folder: str, name: str, **kwargs: object) -> av.Source:
    text = (FIXTURES / folder / name).read_bytes()
    return av.Source(name=f"{folder}/{name}", calendars=[av.parse_calendar(text)], **kwargs)  # type: ignore[arg-type]


def busy(src: av.Source, tz: str = "UTC", **rules: object) -> list[tuple[dt.datetime, dt.datetime]]:
    return av.busy_intervals([src], *WINDOW, av.Rules(tz=ZoneInfo(tz), me=ME, **rules))  # type: ignore[arg-type]


TEAM_SYNC = [
    # EDT (UTC-4) until the 2026-11-01 change: 10:00 New York is 14:00Z
    ("2026-10-06 14:00", "2026-10-06 14:45"),
    ("2026-10-13 14:00", "2026-10-13 14:45"),
    ("2026-10-20 14:00", "2026-10-20 14:45"),
    ("2026-10-27 14:00", "2026-10-27 14:45"),
    # EST (UTC-5): 15:00Z
    ("2026-11-03 15:00", "2026-11-03 15:45"),
    ("2026-11-10 15:00", "2026-11-10 15:45"),
    ("2026-11-17 15:00", "2026-11-17 15:45"),
    ("2026-11-24 15:00", "2026-11-24 15:45"),
    ("2026-12-01 15:00", "2026-12-01 15:45"),
    ("2026-12-08 15:00", "2026-12-08 15:45"),
    ("2026-12-16 19:00", "2026-12-16 19:45"),  # 12-15 moved to Wed 14:00 EST
    ("2026-12-22 15:00", "2026-12-22 15:45"),
    # 12-29 is an EXDATE
    ("2027-01-05 15:00", "2027-01-05 15:45"),
    ("2027-01-12 15:00", "2027-01-12 15:45"),
    ("2027-01-19 15:00", "2027-01-19 15:45"),
    ("2027-01-26 15:00", "2027-01-26 15:45"),
    ("2027-02-02 15:00", "2027-02-02 15:45"),
    ("2027-02-09 15:00", "2027-02-09 15:45"),
    ("2027-02-16 15:00", "2027-02-16 15:45"),
    ("2027-02-23 15:00", "2027-02-23 15:45"),
    ("2027-03-02 15:00", "2027-03-02 15:45"),
    ("2027-03-09 15:00", "2027-03-09 15:45"),
    # EDT again from 2027-03-14
    ("2027-03-16 14:00", "2027-03-16 14:45"),
    ("2027-03-23 14:00", "2027-03-23 14:45"),
    ("2027-03-30 14:00", "2027-03-30 14:45"),  # UNTIL 20270331T035959Z keeps the last one
]

EXPECTED_UTC: dict[str, list[tuple[str, str]]] = {
    "Work/team-sync-weekly-ny-dst-exdate-moved.ics": TEAM_SYNC,
    "Work/month-end-close-monthly-bymonthday-neg1-ny.ics": [
        ("2026-10-31 20:00", "2026-10-31 21:30"),  # still EDT
        ("2026-11-30 21:00", "2026-11-30 22:30"),
        ("2026-12-31 21:00", "2026-12-31 22:30"),
        ("2027-01-31 21:00", "2027-01-31 22:30"),
        ("2027-02-28 21:00", "2027-02-28 22:30"),
        ("2027-03-31 20:00", "2027-03-31 21:30"),  # EDT again
    ],
    "Work/patch-review-monthly-2tu-kolkata.ics": [
        ("2026-11-10 14:00", "2026-11-10 15:00"),
        ("2026-12-08 14:00", "2026-12-08 15:00"),
        ("2027-01-12 14:00", "2027-01-12 15:00"),
        ("2027-02-09 14:00", "2027-02-09 15:00"),
        ("2027-03-09 14:00", "2027-03-09 15:00"),
    ],
    "Work/design-review-duration-kolkata.ics": [("2026-12-04 04:30", "2026-12-04 06:00")],
    "Work/partner-checkin-utc-accepted.ics": [("2026-12-08 16:00", "2026-12-08 17:00")],
    "Work/vendor-pitch-declined-berlin.ics": [],
    "Work/all-hands-needs-action-ny.ics": [("2026-12-10 16:00", "2026-12-10 17:00")],
    "Work/offsite-prep-status-tentative-berlin.ics": [("2026-12-11 09:00", "2026-12-11 10:30")],
    "Work/budget-review-status-cancelled-ny.ics": [],
    "Work/focus-time-transparent-berlin.ics": [],
    "Work/release-night-spans-midnight-ny.ics": [("2026-12-18 03:00", "2026-12-18 07:00")],
    "Work/submission-deadline-zero-length-berlin.ics": [],
    "Work/one-on-one-split-a-past.ics": [
        *weekly("2026-10-01", ("17:00", "17:30"), 5),  # Thu 13:00 EDT
        # 13:00 EST; 12-24 is an EXDATE; 2027-01-07 18:00Z is after UNTIL 17:59:59Z
        *weekly("2026-11-05", ("18:00", "18:30"), 9, skip=("2026-12-24",)),
    ],
    "Work/one-on-one-split-b-future.ics": [
        *weekly("2027-01-07", ("20:00", "20:30"), 10),  # 15:00 EST
        *weekly("2027-03-18", ("19:00", "19:30"), 2),  # 15:00 EDT after 2027-03-14
    ],
    "Work/quarterly-planning-long-description-unicode.ics": [("2027-01-12 08:00", "2027-01-12 11:00")],
    "Work/advent-checkin-daily-exdate-utc-form.ics": [
        (f"2026-12-{d:02d} 07:00", f"2026-12-{d:02d} 07:15") for d in range(1, 25) if d not in (6, 13)
    ],
    "Home/mum-birthday-allday-yearly-transparent.ics": [],
    "Home/ski-trip-allday-multiday-opaque.ics": [("2027-02-13 00:00", "2027-02-20 00:00")],
    "Home/moving-day-allday-single-opaque.ics": [("2026-12-19 00:00", "2026-12-20 00:00")],
    "Home/christmas-eve-yearly-count-berlin.ics": [("2026-12-24 17:00", "2026-12-24 21:00")],
    "Home/dentist-floating-time.ics": [("2026-12-07 08:30", "2026-12-07 09:15")],
    "Home/bnb-call-lord-howe.ics": [("2026-12-05 22:00", "2026-12-05 22:30")],
    "Home/piano-weekly-rdate-transparent-override.ics": [
        *weekly("2026-11-04", ("16:00", "17:00"), 7),  # Wed 17:00 CET
        ("2026-12-19 10:00", "2026-12-19 11:00"),  # the RDATE, Sat 11:00 CET
        # 12-23 is overridden TRANSPARENT; COUNT=16 ends on 2027-02-17
        *weekly("2026-12-30", ("16:00", "17:00"), 8),
    ],
    "Home/swimming-saturdays-cancelled-instance.ics": weekly(
        "2026-11-07", ("09:00", "10:00"), 17, skip=("2026-12-26",)
    ),
    "Home/physio-daily-berlin-dst-start.ics": [
        ("2027-03-25 06:30", "2027-03-25 07:00"),
        ("2027-03-26 06:30", "2027-03-26 07:00"),
        ("2027-03-27 06:30", "2027-03-27 07:00"),
        ("2027-03-28 05:30", "2027-03-28 06:00"),  # CEST from 2027-03-28
        ("2027-03-29 05:30", "2027-03-29 06:00"),
        ("2027-03-30 05:30", "2027-03-30 06:00"),
        ("2027-03-31 05:30", "2027-03-31 06:00"),
    ],
}


def daily(first: str, last: str, times: tuple[str, str]) -> list[tuple[str, str]]:
    """Every day from first to last inclusive, as (start, end) strings."""
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    out = []
    while day <= end:
        out.append((f"{day} {times[0]}", f"{day} {times[1]}"))
        day += dt.timedelta(days=1)
    return out


EXPECTED_UTC.update(
    {
        "Work/invitation-two-occurrences-no-master-berlin.ics": [
            ("2026-12-03 14:00", "2026-12-03 15:00"),
            ("2026-12-23 08:30", "2026-12-23 09:30"),
        ],
        "Home/vitamins-daily-count-1e9-reminder-berlin.ics": [
            *daily("2026-10-01", "2026-10-24", ("06:00", "06:05")),  # 08:00 CEST
            *daily("2026-10-25", "2027-03-27", ("07:00", "07:05")),  # 08:00 CET
            *daily("2027-03-28", "2027-03-31", ("06:00", "06:05")),  # 08:00 CEST again
        ],
        "Work/workshop-rdate-periods-berlin.ics": [
            ("2026-12-01 08:00", "2026-12-01 09:00"),
            ("2026-12-02 12:00", "2026-12-02 15:00"),
            ("2026-12-03 08:00", "2026-12-03 08:30"),
            ("2026-12-04 15:00", "2026-12-04 17:00"),
        ],
        "Work/exchange-customized-tz-plus3.ics": [("2026-12-09 07:00", "2026-12-09 08:00")],
        "Work/exchange-customized-tz-us-eastern.ics": [
            ("2027-03-09 14:00", "2027-03-09 15:00"),
            ("2027-03-16 13:00", "2027-03-16 14:00"),
        ],
        "Work/outlook-windows-zone-with-vtimezone.ics": [("2026-12-11 13:00", "2026-12-11 14:00")],
        "Work/outlook-windows-zone-no-vtimezone.ics": [("2026-12-14 18:00", "2026-12-14 19:00")],
        "Home/dinner-travel-time-berlin.ics": [("2026-12-12 17:30", "2026-12-12 20:00")],
    }
)


def test_every_fixture_has_an_expectation() -> None:
    files = {f"{p.parent.name}/{p.name}" for p in FIXTURES.glob("*/*.ics")}
    assert files == set(EXPECTED_UTC)


@pytest.mark.parametrize("name", sorted(EXPECTED_UTC))
def test_fixture_busy_time_in_utc_configuration(name: str) -> None:
    folder, file = name.split("/")
    assert busy(source(folder, file)) == [iv(a, b) for a, b in EXPECTED_UTC[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED_UTC))
def test_fixtures_parse_without_skips(name: str) -> None:
    folder, file = name.split("/")
    assert av.skipped([source(folder, file)], *WINDOW, av.Rules(tz=ZoneInfo("UTC"), me=ME)) == []


def test_advent_checkin_has_22_occurrences_despite_utc_form_exdate() -> None:
    assert len(busy(source("Work", "advent-checkin-daily-exdate-utc-form.ics"))) == 22


# --- the configured zone: floating times and all-day dates -------------------------------------


def test_floating_time_is_wall_time_of_the_configured_zone() -> None:
    dentist = source("Home", "dentist-floating-time.ics")
    assert busy(dentist, "Europe/Berlin") == [iv("2026-12-07 07:30", "2026-12-07 08:15")]
    assert busy(dentist, "America/New_York") == [iv("2026-12-07 13:30", "2026-12-07 14:15")]


def test_all_day_events_start_at_local_midnight_of_the_configured_zone() -> None:
    assert busy(source("Home", "moving-day-allday-single-opaque.ics"), "Europe/Berlin") == [
        iv("2026-12-18 23:00", "2026-12-19 23:00")
    ]
    assert busy(source("Home", "ski-trip-allday-multiday-opaque.ics"), "Europe/Berlin") == [
        iv("2027-02-12 23:00", "2027-02-19 23:00")  # DTEND 20270220 is exclusive: 7 days
    ]


def test_zoned_events_do_not_move_with_the_configured_zone() -> None:
    for name in ("Work/team-sync-weekly-ny-dst-exdate-moved.ics", "Home/bnb-call-lord-howe.ics"):
        folder, file = name.split("/")
        assert busy(source(folder, file), "Asia/Tokyo") == [iv(a, b) for a, b in EXPECTED_UTC[name]]


def test_all_day_events_can_be_switched_off_per_calendar() -> None:
    for file in ("moving-day-allday-single-opaque.ics", "ski-trip-allday-multiday-opaque.ics"):
        assert busy(source("Home", file, allday_busy=False)) == []
    # timed events of the same calendar are unaffected
    assert busy(source("Home", "dentist-floating-time.ics", allday_busy=False)) != []


# --- rules switches -----------------------------------------------------------------------------


def test_tentative_can_be_configured_free() -> None:
    offsite = source("Work", "offsite-prep-status-tentative-berlin.ics")
    assert busy(offsite, tentative_busy=False) == []


def test_declined_frees_time_only_for_the_user_themselves() -> None:
    pitch = source("Work", "vendor-pitch-declined-berlin.ics")
    rules = av.Rules(tz=ZoneInfo("UTC"), me=frozenset({"someone.else@example.com"}))
    assert av.busy_intervals([pitch], *WINDOW, rules) == [iv("2026-12-09 13:00", "2026-12-09 14:00")]
    alias = av.Rules(tz=ZoneInfo("UTC"), me=frozenset({"robin@alias.example", "MAILTO:Me@Example.com"}))
    assert av.busy_intervals([pitch], *WINDOW, alias) == []


# --- everything together --------------------------------------------------------------------------


def _all_sources(**kwargs: object) -> list[av.Source]:
    out = []
    for folder in ("Home", "Work"):
        cals = [av.parse_calendar(p.read_bytes()) for p in sorted((FIXTURES / folder).glob("*.ics"))]
        out.append(av.Source(name=folder, calendars=cals, **kwargs))  # type: ignore[arg-type]
    return out


def test_all_calendars_merge_into_sorted_disjoint_intervals() -> None:
    rules = av.Rules(tz=ZoneInfo("UTC"), me=ME)
    merged = av.busy_intervals(_all_sources(), *WINDOW, rules)
    assert merged == sorted(merged)
    assert all(a < b for a, b in merged)
    assert all(merged[i][1] < merged[i + 1][0] for i in range(len(merged) - 1))
    # Moving day (all day 12-19) swallows swimming 09-10, the piano RDATE 10-11 and advent 07:00
    assert iv("2026-12-19 00:00", "2026-12-20 00:00") in merged
    every = sorted(iv(a, b) for spans in EXPECTED_UTC.values() for a, b in spans)
    assert merged == av.merge(every)


def test_window_clips_and_a_single_day_query() -> None:
    rules = av.Rules(tz=ZoneInfo("Europe/Berlin"), me=ME)
    day = (dt.datetime(2026, 12, 8, tzinfo=UTC), dt.datetime(2026, 12, 9, tzinfo=UTC))
    assert av.busy_intervals(_all_sources(), *day, rules) == [
        iv("2026-12-08 07:00", "2026-12-08 07:15"),  # advent check-in
        iv("2026-12-08 14:00", "2026-12-08 15:45"),  # patch review 14-15 touching team sync 15-15:45
        iv("2026-12-08 16:00", "2026-12-08 17:00"),  # partner check-in (accepted)
    ]
    clipped = av.busy_intervals(_all_sources(), z("2026-12-08 14:30"), z("2026-12-08 16:30"), rules)
    assert clipped == [iv("2026-12-08 14:30", "2026-12-08 15:45"), iv("2026-12-08 16:00", "2026-12-08 16:30")]


def test_busy_occurrences_name_their_source_and_event() -> None:
    rules = av.Rules(tz=ZoneInfo("UTC"), me=ME)
    day = (dt.datetime(2026, 12, 16, tzinfo=UTC), dt.datetime(2026, 12, 17, tzinfo=UTC))
    found = av.busy_occurrences(_all_sources(), *day, rules)
    summaries = [(o.source, o.summary, o.start, o.end) for o in found]
    moved = ("Work", "Team sync (moved for the holiday lunch)", z("2026-12-16 19:00"), z("2026-12-16 19:45"))
    assert moved in summaries
    assert all(not o.approximate for o in found)


def test_vfreebusy_of_the_fixtures_has_one_line_per_interval() -> None:
    rules = av.Rules(tz=ZoneInfo("UTC"), me=ME)
    day = (dt.datetime(2026, 12, 8, tzinfo=UTC), dt.datetime(2026, 12, 9, tzinfo=UTC))
    text = av.to_vfreebusy(av.busy_intervals(_all_sources(), *day, rules), *day)
    assert "FREEBUSY;FBTYPE=BUSY:20261208T140000Z/20261208T154500Z\r\n" in text
    assert text.count("FREEBUSY;") == 3


# --- shapes Radicale refuses or misplaces -------------------------------------------------------


def test_travel_time_can_be_switched_off() -> None:
    dinner = source("Home", "dinner-travel-time-berlin.ics")
    assert busy(dinner, travel_time=False) == [iv("2026-12-12 18:00", "2026-12-12 20:00")]


@pytest.mark.parametrize("first", ["plus3", "us-eastern"])
def test_two_customized_time_zones_in_one_source_in_either_order(first: str) -> None:
    names = ["exchange-customized-tz-plus3.ics", "exchange-customized-tz-us-eastern.ics"]
    if first != "plus3":
        names.reverse()
    av.clear_cache()
    cals = [av.parse_calendar((FIXTURES / "Work" / n).read_bytes()) for n in names]
    got = av.busy_intervals([av.Source("Work", cals)], *WINDOW, av.Rules(tz=ZoneInfo("UTC"), me=ME))
    expected = [*EXPECTED_UTC[f"Work/{names[0]}"], *EXPECTED_UTC[f"Work/{names[1]}"]]
    assert got == sorted(iv(a, b) for a, b in expected)


def test_the_huge_count_reminder_is_answered_quickly() -> None:
    vitamins = source("Home", "vitamins-daily-count-1e9-reminder-berlin.ics")
    av.clear_cache()
    started = time.process_time()
    assert len(busy(vitamins)) == 182
    assert time.process_time() - started < 0.5
