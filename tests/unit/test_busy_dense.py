"""Dense rules in the busy index: occurrences of one event that overlap or touch are stored as
one row (`spans.merge_dense`), and the busy time answered is the same under every switch."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.availability import engine as av
from calmirror.availability import spans
from calmirror.availability.intervals import merge
from calmirror.availability.rules import EventInfo
from tests.unit.test_busy_index import Clock, mirror_write, world

UTC = dt.UTC
BASE = dt.datetime(2027, 3, 1, tzinfo=UTC)
INFOS = [
    EventInfo("u", "a", False, False, ()),
    EventInfo("u", "b", False, True, (), dt.timedelta(minutes=30)),
    EventInfo("u", "c", False, False, (), dt.timedelta(minutes=15)),
]


def busy_of(hits: list[av.ItemHit], travel: bool, tentative: bool) -> list[tuple[dt.datetime, dt.datetime]]:
    """What the index's query makes of rows: travel moves each start back, a tentative one
    may be left out; the answer is the union."""
    out = []
    for start, end, _, info, _, _ in hits:
        if not tentative and info.tentative:
            continue
        first = start - info.travel if travel else start
        if first < end:
            out.append((first, end))
    return merge(out)


hits = st.lists(
    st.tuples(
        st.integers(0, 3000),  # start, minutes after BASE
        st.integers(0, 90),  # length in minutes (0: a zero-length event)
        st.sampled_from(["u1", "u2"]),
        st.integers(0, len(INFOS) - 1),
        st.booleans(),  # all day
        st.booleans(),  # approximate
    ),
    max_size=60,
).map(
    lambda raw: [
        (BASE + dt.timedelta(minutes=s), BASE + dt.timedelta(minutes=s + n), uid, INFOS[i], day, rough)
        for s, n, uid, i, day, rough in raw
    ]
)


@settings(max_examples=300, deadline=None)
@given(found=hits, travel=st.booleans(), tentative=st.booleans())
def test_merging_keeps_the_busy_time_under_every_switch(found: list[av.ItemHit], travel: bool, tentative: bool) -> None:
    original = spans.DENSE_ROWS
    spans.DENSE_ROWS = 0  # merge whatever the count
    try:
        merged = spans.merge_dense(list(found))
    finally:
        spans.DENSE_ROWS = original
    assert busy_of(merged, travel, tentative) == busy_of(found, travel, tentative)
    assert len(merged) <= len(found)
    for start, _, uid, info, day, rough in merged:  # each row is made of rows alike
        assert any((h[2], h[3], h[4], h[5]) == (uid, info, day, rough) and h[0] == start for h in found)


def test_a_rule_every_quarter_hour_is_a_few_rows_and_answers_as_the_engine() -> None:
    """Back-to-back occurrences (FREQ=MINUTELY;INTERVAL=15, 15 minutes long) used to be a row
    each, 105,000 over the horizon; they are now one row per stretch between DST changes."""
    clock = Clock(dt.datetime(2026, 12, 7, tzinfo=UTC))
    dense = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:quarter\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20251201T090000\r\nDURATION:PT15M\r\n"
        "RRULE:FREQ=MINUTELY;INTERVAL=15\r\nX-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with world("Europe/Berlin", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {"quarter.ics": dense})
        (count,) = busy.state.db.conn.execute("SELECT COUNT(*) FROM busy_spans").fetchone()
        assert 0 < count < 10
        for ws in (dt.datetime(2026, 12, 8, 10, 7, tzinfo=UTC), dt.datetime(2027, 3, 27, 23, tzinfo=UTC)):
            we = ws + dt.timedelta(days=2)
            exact = av.busy_intervals([av.Source("s", [av.parse_calendar(dense)])], ws, we, busy.rules())
            assert busy.busy(ws, we) == exact
