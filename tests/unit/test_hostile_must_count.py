"""Valid but extreme objects of the hostile corpus count as busy, within time and memory bounds."""

from __future__ import annotations

import datetime as dt
import time
import tracemalloc
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av
from tests import hostile_corpus
from tests.hostile_items import Case

UTC = dt.UTC
MUST_COUNT = [case for case in hostile_corpus.CORPUS if case.kind == "must-count"]
YEAR = (dt.datetime(2027, 1, 1, tzinfo=UTC), dt.datetime(2028, 1, 1, tzinfo=UTC))


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_valid_but_extreme_items_are_classified_must_count() -> None:
    assert {case.name for case in MUST_COUNT} == set(hostile_corpus.MUST_COUNT)
    assert all(case.kind == "hostile" for case in hostile_corpus.CORPUS if case.name not in hostile_corpus.MUST_COUNT)


@pytest.mark.parametrize("case", MUST_COUNT, ids=lambda case: case.name)
def test_must_count_items_block_exactly_their_time(case: Case) -> None:
    av.clear_cache()
    source = av.Source(case.name, [av.parse_calendar(case.body)])
    rules = av.Rules(ZoneInfo("UTC"))
    window = (z(hostile_corpus.BUSY_WINDOW[0]), z(hostile_corpus.BUSY_WINDOW[1]))
    assert av.busy_intervals([source], *window, rules) == [(z(a), z(b)) for a, b in case.expect_busy]
    # nothing left out, apart from the unknown zones the engine reports having read as floating
    reasons = [s.reason for s in av.skipped([source], *window, rules)]
    floating = {
        "unknown-tzid": ["unknown TZID 'Mars/Olympus_Mons' read in the configured zone"],
        "empty-vtimezone": ["unknown TZID 'Empty/Zone' read in the configured zone"],
    }
    assert reasons == floating.get(case.name, [])


@pytest.mark.parametrize("case", MUST_COUNT, ids=lambda case: case.name)
def test_must_count_items_over_a_year_stay_within_bounds(case: Case) -> None:
    calendar = av.parse_calendar(case.body)
    rules = av.Rules(ZoneInfo("UTC"))
    av.clear_cache()
    started = time.process_time()
    busy = av.busy_intervals([av.Source(case.name, [calendar])], *YEAR, rules)
    took = time.process_time() - started
    assert took < 3.0, took
    assert busy or case.name == "year-one"
    # memory of a cold 30-day query, traced apart (tracing slows the walk tenfold)
    av.clear_cache()
    tracemalloc.start()
    try:
        av.busy_intervals([av.Source(case.name, [calendar])], YEAR[0], YEAR[0] + dt.timedelta(days=30), rules)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak


def test_a_daily_billion_count_over_a_year_in_under_half_a_second() -> None:
    calendar = av.parse_calendar(hostile_corpus.BY_NAME["rrule-count-1e9"].body)
    av.clear_cache()
    started = time.process_time()
    busy = av.busy_intervals([av.Source("c", [calendar])], *YEAR, av.Rules(ZoneInfo("UTC")))
    assert time.process_time() - started < 0.5
    assert len(busy) == 306  # 2027-03-01 .. 2027-12-31, one a day


def test_the_guard_checks_a_series_from_the_year_one_without_overflowing() -> None:
    candidate = av.parse_calendar(hostile_corpus.BY_NAME["year-one"].body)
    stored = av.parse_calendar(hostile_corpus.BY_NAME["rrule-count-1e9"].body)
    # checked for a year after its first occurrence (the year 1): nothing stored is there
    assert av.overlaps(candidate, [av.Source("s", [stored])], av.Rules(ZoneInfo("UTC"))) == []
