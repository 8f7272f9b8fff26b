"""A COUNT rule whose DTSTART the rule itself would not produce (`BYDAY=MO;COUNT=3` from a
Tuesday): RFC 5545 3.3.10 makes DTSTART the first occurrence, counted toward COUNT, so that
rule has the Tuesday and two Mondays. dateutil and recurring-ical-events add DTSTART on top
of COUNT rule occurrences; Radicale (vobject) takes one off the COUNT.

Busy time (the engine's blocks, its one walk for the busy index, and a walk far from DTSTART
that starts from a checkpoint) must count exactly the RFC's occurrences, and a client of the
mirror must find the same ones in the copy: by Radicale's own time-range walk and by
expanding the copy with recurring-ical-events itself. The expected list is worked out here
from dateutil's plain walk of the rule: DTSTART, then the rule's other occurrences, COUNT in
all."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from dateutil.rrule import rrulestr
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from calmirror.availability import engine as av
from calmirror.testing import ical
from tests.radicale_view import radicale_starts
from tests.unit.test_client_view_corpora import POLICY, client_copy

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
RULES = av.Rules(tz=ZoneInfo("UTC"))
assert POLICY.horizon is not None
HORIZON = dt.datetime.combine(POLICY.horizon, dt.time(), UTC)  # (a copy promises no more)
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def rfc_walls(rule: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    walls = [start]
    for wall in rrulestr(rule, dtstart=start):
        if len(walls) >= count:
            break
        if wall != start:
            walls.append(wall)
    return walls


def _utc(wall: dt.datetime, form: str) -> dt.datetime:
    return wall.replace(tzinfo=BERLIN if form == "zoned" else UTC).astimezone(UTC)


def text_of(rule: str, count: int, start: dt.datetime, form: str) -> str:
    if form == "date":
        head = [f"DTSTART;VALUE=DATE:{start:%Y%m%d}", "DURATION:P1D"]
    elif form == "zoned":
        head = [f"DTSTART;TZID=Europe/Berlin:{start:%Y%m%dT%H%M%S}", "DURATION:PT1H"]
    else:
        head = [f"DTSTART:{start:%Y%m%dT%H%M%S}Z", "DURATION:PT1H"]
    vevent = ["UID:counted@example.org", "DTSTAMP:20261101T000000Z", *head, f"RRULE:{rule};COUNT={count}", "SUMMARY:x"]
    zones = ical.VTIMEZONES["Europe/Berlin"] if form == "zoned" else []
    return ical.vcalendar(vevent, head=zones, prodid=ical.APPLE_PRODID)


@st.composite
def rules(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["weekly", "monthday", "nth", "setpos", "yearly", "daily-hour", "weekno"]))
    if kind == "weekly":
        days = draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=3))
        wkst = draw(st.sampled_from(["", ";WKST=SU"]))
        interval = draw(st.sampled_from([1, 2]))
        return f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={','.join(sorted(days, key=DAYS.index))}{wkst}"
    if kind == "monthday":
        monthdays = sorted(draw(st.sets(st.integers(1, 28), min_size=1, max_size=2)))
        return f"FREQ=MONTHLY;BYMONTHDAY={','.join(map(str, monthdays))}"
    if kind == "nth":
        return f"FREQ=MONTHLY;BYDAY={draw(st.sampled_from([1, 2, -1]))}{draw(st.sampled_from(DAYS))}"
    if kind == "setpos":
        return f"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS={draw(st.sampled_from([1, 2, -1]))}"
    if kind == "yearly":
        return f"FREQ=YEARLY;BYMONTH={draw(st.integers(1, 12))};BYMONTHDAY={draw(st.integers(1, 28))}"
    if kind == "weekno":
        return f"FREQ=YEARLY;BYWEEKNO={draw(st.integers(1, 52))};BYDAY={draw(st.sampled_from(DAYS))}"
    return f"FREQ=DAILY;BYHOUR={draw(st.sampled_from([7, 9, 18]))};BYDAY={draw(st.sampled_from(['MO,WE,FR', 'SA,SU']))}"


def expected(rule: str, count: int, start: dt.datetime, form: str) -> list[dt.datetime]:
    return [_utc(wall, form) for wall in rfc_walls(rule, start, count)]


def found(text: str, window: tuple[dt.datetime, dt.datetime]) -> dict[str, list[dt.datetime]]:
    """Each reader's occurrence starts inside the window, in UTC."""
    calendar = av.parse_calendar(text)
    blocks = av.busy_occurrences([av.Source("s", [calendar])], *window, RULES, remember=False)
    one_walk = av.walk_item(av.item_index(calendar), *window, RULES)
    copy = client_copy(text)
    library = recurring_ical_events.of(icalendar.Calendar.from_ical(copy)).between(*window)
    starts = [e["DTSTART"].dt for e in library]
    return {
        "engine": sorted(o.start for o in blocks if window[0] <= o.start < window[1]),
        "busy index": sorted(h[0] for h in one_walk if window[0] <= h[0] < window[1]),
        "Radicale over the copy": radicale_starts(copy, window),
        "a client expanding the copy": sorted(
            (s if isinstance(s, dt.datetime) else dt.datetime(s.year, s.month, s.day, tzinfo=UTC)).astimezone(UTC)
            for s in starts
        ),
    }


@settings(max_examples=120, deadline=None)
@given(
    rule=rules(),
    count=st.integers(1, 12),
    day=st.integers(0, 60),
    hour=st.sampled_from([8, 10, 23]),
    form=st.sampled_from(["utc", "zoned", "date"]),
)
@example(rule="FREQ=WEEKLY;INTERVAL=1;BYDAY=MO", count=3, day=0, hour=10, form="utc")  # a Tuesday
@example(rule="FREQ=WEEKLY;INTERVAL=1;BYDAY=MO", count=1, day=0, hour=10, form="date")
@example(rule="FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", count=2, day=0, hour=10, form="zoned")
def test_dtstart_off_the_rule_counts_toward_count_for_every_reader(
    rule: str, count: int, day: int, hour: int, form: str
) -> None:
    start = dt.datetime(2026, 12, 1, 0 if form == "date" else hour) + dt.timedelta(days=day)
    assume(next(iter(rrulestr(rule, dtstart=start)), None) != start)  # DTSTART is not the rule's
    assume(form != "date" or "BYHOUR" not in rule)  # (hours of a date mean nothing)
    text = text_of(rule, count, start, form)
    want = [w for w in expected(rule, count, start, form) if w < HORIZON - dt.timedelta(days=1)]
    window = (want[0] - dt.timedelta(days=1), min(want[-1] + dt.timedelta(days=400), HORIZON - dt.timedelta(days=1)))
    for reader, starts in found(text, window).items():
        assert starts == want, (reader, text)


@settings(max_examples=25, deadline=None)
@given(
    days=st.sets(st.sampled_from(DAYS), min_size=1, max_size=3),
    count=st.integers(600, 1000),
    day=st.integers(0, 6),
    form=st.sampled_from(["utc", "zoned"]),
)
def test_far_from_dtstart_the_count_still_ends_where_the_rfc_ends_it(
    days: set[str], count: int, day: int, form: str
) -> None:
    """A long COUNT rule is walked near its end from a checkpoint, not from DTSTART: its last
    occurrences are still the RFC's."""
    rule = f"FREQ=WEEKLY;BYDAY={','.join(sorted(days, key=DAYS.index))}"
    start = dt.datetime(2010, 1, 4, 10) + dt.timedelta(days=day)
    assume(next(iter(rrulestr(rule, dtstart=start)), None) != start)
    want = expected(rule, count, start, form)
    window = (want[-1] - dt.timedelta(days=40), want[-1] + dt.timedelta(days=40))
    text = text_of(rule, count, start, form)
    near_end = [w for w in want if window[0] <= w < window[1]]
    got = found(text, window)
    assert got["engine"] == near_end
    assert got["busy index"] == near_end
    assert got["Radicale over the copy"] == near_end
