"""The week model: dates people type, and blocks, busy time and free ranges that agree."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.availability import engine
from calmirror.availability.intervals import merge
from calmirror.testing.ical import event
from calmirror.web import blocks
from calmirror.web.week import BadDate, Block, Day, SourceLabel, build_week, parse_day, window

WED = dt.date(2026, 12, 9)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", WED),
        ("", WED),
        ("tomorrow", dt.date(2026, 12, 10)),
        ("wednesday", WED),
        ("friday", dt.date(2026, 12, 11)),
        ("Fri", dt.date(2026, 12, 11)),
        ("monday", dt.date(2026, 12, 14)),
        ("next monday", dt.date(2026, 12, 14)),
        ("next friday", dt.date(2026, 12, 18)),
        ("next  Wednesday", dt.date(2026, 12, 16)),
        ("+3d", dt.date(2026, 12, 12)),
        ("+1w", dt.date(2026, 12, 16)),
        ("-2 days", dt.date(2026, 12, 7)),
        ("2027-01-04", dt.date(2027, 1, 4)),
    ],
)
def test_dates_people_type(text: str, expected: dt.date) -> None:
    assert parse_day(text, WED) == expected


@pytest.mark.parametrize("text", ["someday", "next", "13/12/2026", "+3x", "last monday", "2026-02-30"])
def test_dates_not_understood_say_what_would_be(text: str) -> None:
    with pytest.raises(BadDate) as refused:
        parse_day(text, WED)
    assert "next monday" in refused.value.message and text in refused.value.message


BERLIN = ZoneInfo("Europe/Berlin")
RULES = engine.Rules(tz=BERLIN)


def _source(name: str, events: list[tuple[int, int]], title: str = "Secret plan") -> engine.Source:
    base = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    fmt = "%Y%m%dT%H%M%SZ"
    calendars = [
        engine.parse_calendar(
            event(
                f"{name}-{i}",
                title,
                (base + dt.timedelta(minutes=a)).strftime(fmt),
                (base + dt.timedelta(minutes=a + b)).strftime(fmt),
            )
        )
        for i, (a, b) in enumerate(events)
    ]
    return engine.Source(name=name, calendars=calendars)


def test_private_sources_show_busy_and_multi_day_events_show_on_each_day() -> None:
    mirror = _source("icloud-home", [(60 * 20, 60 * 10)])  # Mon 21:00 Berlin to Tue 07:00
    labels = {"icloud-home": SourceLabel("Home", "mirror", "#ff0000", private=True)}
    week = build_week([mirror], RULES, dt.date(2026, 12, 7), labels)
    monday, tuesday = week.days[0], week.days[1]
    assert [b.title for b in monday.blocks] == ["Busy"] and [b.calendar for b in tuesday.blocks] == ["Home"]
    assert monday.blocks[0].minutes_on(monday.date, BERLIN) == (21 * 60, 24 * 60)
    assert tuesday.blocks[0].minutes_on(tuesday.date, BERLIN) == (0, 7 * 60)
    assert "Secret plan" not in repr(week.days)


events = st.lists(st.tuples(st.integers(0, 60 * 24 * 8), st.integers(1, 60 * 30)), max_size=12)


@settings(max_examples=40, deadline=None)
@given(a=events, b=events, slot=st.sampled_from([15, 30, 60, 90]))
def test_blocks_busy_and_free_agree(a: list[tuple[int, int]], b: list[tuple[int, int]], slot: int) -> None:
    sources = [_source("appointments", a), _source("icloud-work", b)]
    first = dt.date(2026, 12, 7)
    week = build_week(sources, RULES, first, {}, slot=dt.timedelta(minutes=slot))
    ws, we = window(first, BERLIN)
    busy = engine.busy_intervals(sources, ws, we, RULES)
    assert [(x.astimezone(dt.UTC), y.astimezone(dt.UTC)) for x, y in week.busy] == busy
    shown = merge(
        (max(blk.start.astimezone(dt.UTC), ws), min(blk.end.astimezone(dt.UTC), we))
        for day in week.days
        for blk in day.blocks
    )
    assert shown == busy
    for day in week.days:
        for lo, hi in day.free:
            assert hi - lo >= dt.timedelta(minutes=slot)
            assert lo.time() >= dt.time(9) and (hi.time() <= dt.time(17)) and lo.date() == day.date
            assert all(hi <= x or lo >= y for x, y in week.busy)


def test_the_timeline_places_blocks_by_quarter_hour_and_escapes_what_calendars_say() -> None:
    zone = ZoneInfo("Europe/Berlin")
    day = dt.date(2026, 12, 9)

    def block(source: str, title: str, start: dt.datetime, end: dt.datetime) -> Block:
        return Block(source, 'Team "<b>"', "mirror", title, start, end, False, False, title)

    at = dt.datetime(2026, 12, 9, 9, tzinfo=zone)
    shown = Day(
        day,
        (
            block("icloud-work", "<script>alert(1)</script>", at, at + dt.timedelta(hours=1)),
            block(
                "icloud-work", "Late & long", at - dt.timedelta(hours=12), at - dt.timedelta(hours=6)
            ),  # 21:00 the day before
        ),
        (),
    )
    html = str(blocks.timeline(shown, zone, {"icloud-work": "src-3"}))
    second, first = html.splitlines()  # in time order: the one that began the day before comes first
    assert (
        'class="block r-37 h-4 src-3"' in first and '<span class="time">09:00<span class="until">–10:00</span>' in first
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert "Team &#34;&lt;b&gt;&#34;" in first and "<b>" not in html
    assert (
        'class="block r-1 h-12 src-3"' in second and '<span class="time">…<span class="until">–03:00</span>' in second
    )
    assert 'title="21:00–03:00 Late &amp; long' in second
