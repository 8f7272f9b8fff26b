"""Busy time past the busy index's horizon is kept a year at a time: the first question about a
year parses the series reaching it, later ones (in this process or the next) parse nothing,
a changed or removed series takes its rows with it, and every answer equals the engine's."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability import far_years, sources, spans
from calmirror.availability.sources import BusySources
from calmirror.state import busy_far
from tests.unit.test_busy_index import CAL, Clock, engine_answer, mirror_write, world

UTC = dt.UTC
NOW = dt.datetime(2027, 3, 1, 9, tzinfo=UTC)


def weekly(uid: str, hour: int, extra: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270301T{hour:02d}0000Z\r\n"
        f"DTEND:20270301T{hour:02d}3000Z\r\nRRULE:FREQ=WEEKLY{extra}\r\nSUMMARY:{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def far_week(busy: BusySources, years_on: int) -> tuple[dt.datetime, dt.datetime]:
    meta = busy.state.busy_meta()
    assert meta is not None
    start = spans.from_us(int(meta["horizon"][1])) + dt.timedelta(days=365 * years_on)
    start = start.replace(hour=0, minute=0)
    return start, start + dt.timedelta(days=7)


def test_a_year_past_the_horizon_is_computed_once_and_read_after_a_restart() -> None:
    with world("UTC", Clock(NOW)) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {f"w{n}.ics": weekly(f"w{n}", 8 + n) for n in range(3)})
        window = far_week(busy, 1)
        before = spans.parsed
        first = busy.occurrences(*window)
        assert first == engine_answer(busy, *window) and len(first) == 3
        assert spans.parsed - before == 3  # each series once, for its whole year

        before = spans.parsed
        later = (window[0] + dt.timedelta(days=14), window[1] + dt.timedelta(days=14))
        assert busy.occurrences(*later) == engine_answer(busy, *later)
        restarted = BusySources(busy.store, busy.state, busy.settings, clock=busy.upkeep.clock)
        assert restarted.occurrences(*window) == first
        assert spans.parsed == before  # same year: read, not parsed, in this process and the next


def test_a_changed_series_is_answered_from_its_new_text_and_a_removed_one_not_at_all() -> None:
    with world("UTC", Clock(NOW)) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {"a.ics": weekly("a", 8), "b.ics": weekly("b", 10)})
        window = far_week(busy, 1)
        assert {o.uid for o in busy.occurrences(*window)} == {"a", "b"}

        mirror_write(busy, {"a.ics": weekly("a", 14)}, deletes=["b.ics"])
        found = busy.occurrences(*window)
        assert found == engine_answer(busy, *window)
        assert [(o.uid, o.start.hour) for o in found] == [("a", 14)]

        busy.state.forget_mirror(CAL)  # the calendar is no longer mirrored
        busy.upkeep.ensure()
        assert busy.occurrences(*window) == []
        assert busy.state.db.conn.execute("SELECT COUNT(*) FROM busy_far_spans").fetchone()[0] == 0


def test_a_series_ending_before_a_far_year_is_not_parsed_for_it() -> None:
    with world("UTC", Clock(NOW)) as busy:
        busy.upkeep.ensure()
        ends = weekly("short", 8, ";UNTIL=20270601T000000Z")
        mirror_write(busy, {"open.ics": weekly("open", 9), "short.ics": ends})
        before = spans.parsed
        window = far_week(busy, 1)
        assert [o.uid for o in busy.occurrences(*window)] == ["open"]
        assert spans.parsed - before == 1


def test_at_most_the_kept_number_of_years_stays_and_wide_windows_ask_the_engine() -> None:
    with world("UTC", Clock(NOW)) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {"w.ics": weekly("w", 8)})
        for years_on in range(busy_far.YEARS_KEPT + 2):
            window = far_week(busy, years_on)
            assert busy.occurrences(*window) == engine_answer(busy, *window)
        assert len(busy.state.busy_far_years()) == busy_far.YEARS_KEPT

        kept = busy.state.busy_far_years()
        start = far_week(busy, 10)[0]
        wide = (start, start + dt.timedelta(days=365 * sources.FAR_YEARS + 30))
        assert busy.occurrences(*wide) == engine_answer(busy, *wide)
        assert busy.state.busy_far_years() == kept  # answered directly, nothing kept


HORIZON = (far_years.year_bounds(2027)[0] + 86_400_000_000 * 40, far_years.year_bounds(2030)[0] - 7)
instants = st.integers(far_years.year_bounds(2024)[0], far_years.year_bounds(2033)[0])


@given(
    window=st.tuples(instants, instants).filter(lambda w: w[0] < w[1]),
    occurrences=st.lists(st.tuples(instants, st.integers(1, 86_400_000_000 * 400)), max_size=20),
)
def test_each_occurrence_touching_a_window_is_answered_exactly_once(
    window: tuple[int, int], occurrences: list[tuple[int, int]]
) -> None:
    """By the index inside the horizon or by exactly one year's piece outside it."""
    (a, b), (h0, h1) = window, HORIZON
    pieces = far_years.pieces(window, HORIZON)
    for start, length in occurrences:
        end = start + length
        answered = int(max(a, h0) < min(b, h1) and end > max(a, h0) and start < min(b, h1))
        for p in pieces:
            ys, ye = far_years.year_bounds(p.year)
            stored = start < ye and end > ys  # a year keeps every occurrence touching it
            answered += stored and p.start < end and start < p.end and start >= p.min_start and end <= p.max_end
        assert answered == int(end > a and start < b)
