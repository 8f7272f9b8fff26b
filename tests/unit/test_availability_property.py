"""Property tests: the engine against a deliberately naive reference, and against itself.

The reference expands by stepping whole days in plain Python, applies the busy rules by
hand and merges; it knows nothing of dateutil or recurring-ical-events. Events are
generated around the 2027-03-28 DST change in Berlin so wall-clock stepping matters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.availability import engine as av
from calmirror.availability import expansion
from calmirror.testing import ical

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
BASE = dt.datetime(2027, 3, 1)


@dataclass(frozen=True)
class Ev:
    form: str  # "utc" | "berlin" | "floating" | "date"
    start: dt.datetime  # naive wall time (midnight for "date")
    length: dt.timedelta
    step_days: int  # 0: no RRULE
    count: int
    status: str  # "" | "CONFIRMED" | "TENTATIVE" | "CANCELLED"
    transparent: bool
    exdates: frozenset[int]
    exdate_in_utc: bool
    moved: int | None  # occurrence index overridden
    move_by: dt.timedelta
    moved_transparent: bool


@st.composite
def events(draw: st.DrawFn) -> Ev:
    form = draw(st.sampled_from(["utc", "berlin", "floating", "date"]))
    day = draw(st.integers(0, 45))
    if form == "date":
        start = BASE + dt.timedelta(days=day)
        length = dt.timedelta(days=draw(st.integers(1, 3)))
    else:
        start = BASE + dt.timedelta(days=day, minutes=15 * draw(st.integers(0, 95)))
        length = dt.timedelta(minutes=15 * draw(st.integers(0, 20)))
    step = draw(st.sampled_from([0, 1, 2, 7, 14]))
    count = draw(st.integers(1, 25)) if step else 1
    moved = draw(st.none() | st.integers(0, count - 1))
    move_days = 1 if form == "date" else 0
    return Ev(
        form=form,
        start=start,
        length=length,
        step_days=step,
        count=count,
        status=draw(st.sampled_from(["", "", "", "CONFIRMED", "TENTATIVE", "CANCELLED"])),
        transparent=draw(st.sampled_from([False, False, False, True])),
        exdates=frozenset(draw(st.sets(st.integers(0, count - 1), max_size=3))) if step else frozenset(),
        exdate_in_utc=draw(st.booleans()),
        moved=moved if step else None,
        move_by=dt.timedelta(
            days=move_days * draw(st.integers(-2, 2)), minutes=0 if form == "date" else 15 * draw(st.integers(-8, 96))
        ),
        moved_transparent=draw(st.booleans()),
    )


#: The zone each generated form is written in (None: floating, or a date).
FORM_ZONES: dict[str, str | None] = {"utc": "UTC", "berlin": "Europe/Berlin", "floating": None, "date": None}


def _value(ev: Ev, wall: dt.datetime, name: str) -> str:
    return name + ical.stamp(wall.date() if ev.form == "date" else wall, FORM_ZONES[ev.form])


def _occurrence_wall(ev: Ev, i: int) -> dt.datetime:
    return ev.start + dt.timedelta(days=ev.step_days * i)


def to_ics(evs: list[Ev]) -> str:
    vevents: list[list[str]] = []
    for n, ev in enumerate(evs):
        common = [f"UID:ev{n}", "DTSTAMP:20270101T000000Z"]
        master = [*common, _value(ev, ev.start, "DTSTART"), _value(ev, ev.start + ev.length, "DTEND")]
        if ev.status:
            master.append(f"STATUS:{ev.status}")
        master.append("TRANSP:TRANSPARENT" if ev.transparent else "TRANSP:OPAQUE")
        if ev.step_days:
            weeks, days = divmod(ev.step_days, 7)
            freq = f"WEEKLY;INTERVAL={weeks}" if days == 0 else f"DAILY;INTERVAL={ev.step_days}"
            master.append(f"RRULE:FREQ={freq};COUNT={ev.count}")
        for i in sorted(ev.exdates):
            wall = _occurrence_wall(ev, i)
            if ev.exdate_in_utc and ev.form == "berlin":
                master.append("EXDATE" + ical.stamp(wall.replace(tzinfo=BERLIN).astimezone(UTC), "UTC"))
            else:
                master.append(_value(ev, wall, "EXDATE"))
        vevents.append(master)
        if ev.moved is not None:
            original = _occurrence_wall(ev, ev.moved)
            start = original + ev.move_by
            override = [
                *common,
                _value(ev, original, "RECURRENCE-ID"),
                _value(ev, start, "DTSTART"),
                _value(ev, start + ev.length, "DTEND"),
                "SEQUENCE:1",
                "TRANSP:TRANSPARENT" if ev.moved_transparent else "TRANSP:OPAQUE",
            ]
            if ev.status:
                override.append(f"STATUS:{ev.status}")
            vevents.append(override)
    return ical.vcalendar(*vevents, head=ical.VTIMEZONES["Europe/Berlin"], prodid="-//prop//EN")


def _utc(ev: Ev, wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    if ev.form == "utc":
        return wall.replace(tzinfo=UTC)
    if ev.form == "berlin":
        return wall.replace(tzinfo=BERLIN).astimezone(UTC)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def reference(
    evs: list[Ev], start: dt.datetime, end: dt.datetime, zone: ZoneInfo, allday: bool, tentative: bool
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Naive expansion: step whole days, drop EXDATEs, apply the override, judge, merge, clip.
    An override of an EXDATEd occurrence still counts (an event of its own; erring towards busy)."""
    spans = []
    for ev in evs:
        if ev.form == "date" and not allday:
            continue
        if ev.status == "CANCELLED" or (ev.status == "TENTATIVE" and not tentative):
            continue
        for i in range(ev.count):
            if i in ev.exdates and i != ev.moved:
                continue
            wall = _occurrence_wall(ev, i)
            transparent = ev.transparent
            if i == ev.moved:
                wall, transparent = wall + ev.move_by, ev.moved_transparent
            if transparent:
                continue
            a, b = _utc(ev, wall, zone), _utc(ev, wall + ev.length, zone)
            if ev.form == "berlin" and i != ev.moved:
                # RFC 5545: every instance lasts the master's exact DTEND - DTSTART (across DST);
                # an override's own DTEND is its end.
                b = a + (_utc(ev, ev.start + ev.length, zone) - _utc(ev, ev.start, zone))
            a, b = max(a, start), min(b, end)
            if a < b:
                spans.append((a, b))
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


FULL = (BASE.replace(tzinfo=UTC) - dt.timedelta(days=1), BASE.replace(tzinfo=UTC) + dt.timedelta(days=400))
windows = st.just(FULL) | st.tuples(st.integers(0, 24 * 50), st.integers(1, 24 * 30)).map(
    lambda p: (
        (BASE + dt.timedelta(hours=p[0])).replace(tzinfo=UTC),
        (BASE + dt.timedelta(hours=p[0] + p[1])).replace(tzinfo=UTC),
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    evs=st.lists(events(), min_size=1, max_size=4),
    window=windows,
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    allday=st.booleans(),
    tentative=st.booleans(),
)
def test_engine_agrees_with_naive_reference(
    evs: list[Ev], window: tuple[dt.datetime, dt.datetime], zone: str, allday: bool, tentative: bool
) -> None:
    calendar = av.parse_calendar(to_ics(evs))
    rules = av.Rules(ZoneInfo(zone), tentative_busy=tentative)
    got = av.busy_intervals([av.Source("s", [calendar], allday_busy=allday)], *window, rules)
    assert got == reference(evs, *window, ZoneInfo(zone), allday, tentative)


# --- fast-forwarding must be invisible -------------------------------------------------------------

RULES = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=3",
        "FREQ=WEEKLY",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
        "FREQ=WEEKLY;BYDAY=TU;WKST=SU;INTERVAL=3",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;BYDAY=2TU",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "FREQ=YEARLY",
        "FREQ=YEARLY;BYMONTH=2,12;BYDAY=-1FR",
        "FREQ=HOURLY;INTERVAL=5",
        "FREQ=HOURLY;BYHOUR=9,17",
        "FREQ=MINUTELY;INTERVAL=90;BYDAY=SA",
        "FREQ=DAILY;BYMONTH=12;BYDAY=MO,FR",
        "FREQ=DAILY;BYHOUR=8,12;BYMINUTE=0,30",
        "FREQ=WEEKLY;BYMONTHDAY=1,15",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=RULES,
    years_back=st.integers(1, 40),
    day=st.integers(1, 31),
    minute=st.integers(0, 95),
    count=st.none() | st.integers(1, 4000),
    form=st.sampled_from(["utc", "berlin", "floating"]),
    window=windows,
)
def test_fast_forward_gives_the_same_answer_as_walking_from_dtstart(
    rule: str,
    years_back: int,
    day: int,
    minute: int,
    count: int | None,
    form: str,
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    start = dt.datetime(2027 - years_back, 1, 1) + dt.timedelta(days=day - 1, minutes=15 * minute)
    ev = Ev(form, start, dt.timedelta(minutes=45), 0, 1, "", False, frozenset(), False, None, dt.timedelta(0), False)
    text = to_ics([ev]).replace(
        "TRANSP:OPAQUE", f"TRANSP:OPAQUE\r\nRRULE:{rule}" + (f";COUNT={count}" if count else "")
    )
    rules = av.Rules(BERLIN)
    fast = av.busy_intervals([av.Source("s", [av.parse_calendar(text)])], *window, rules)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(expansion, "DIRECT_LIMIT", 10**9)
        walked = av.busy_intervals([av.Source("s", [av.parse_calendar(text)])], *window, rules)
    assert fast == walked


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=2000",
        "FREQ=HOURLY;INTERVAL=7",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=MINUTELY;INTERVAL=45;BYHOUR=9,10",
    ],
)
def test_one_calendar_asked_about_sliding_windows_stays_exact(rule: str) -> None:
    """The rebased series is reused between nearby windows; reuse must not leak answers."""
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//prop//EN\r\nBEGIN:VEVENT\r\nUID:s\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART:20120302T081500Z\r\nDTEND:20120302T090000Z\r\n"
        f"RRULE:{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    kept = [av.Source("s", [av.parse_calendar(text)])]
    rules = av.Rules(BERLIN)
    for n in range(20):
        start = dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(days=37 * n, hours=5 * n)
        window = (start, start + dt.timedelta(days=3 + n % 9))
        fast = av.busy_intervals(kept, *window, rules)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(expansion, "DIRECT_LIMIT", 10**9)
            walked = av.busy_intervals([av.Source("s", [av.parse_calendar(text)])], *window, rules)
        assert fast == walked, window


def test_equal_occurrences_are_all_kept_however_many_blocks_the_window_spans() -> None:
    """An override moved onto another instance's time is a second, equal occurrence: a
    window over several expansion blocks keeps both, as a window inside one block does."""
    moved = Ev(
        "berlin", BASE, dt.timedelta(minutes=15), 1, 2, "", False, frozenset(), False, 0, dt.timedelta(days=1), False
    )
    source = [av.Source("s", [av.parse_calendar(to_ics([moved]))])]
    start = BASE.replace(tzinfo=UTC)
    for days in (1, 35, 200):
        found = av.busy_occurrences(source, start, start + dt.timedelta(days=days), av.Rules(BERLIN))
        assert [o.start for o in found] == [dt.datetime(2027, 3, 1, 23, tzinfo=UTC)] * 2, days
