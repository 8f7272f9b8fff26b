"""`intervals.subtract`, which splits a free-busy answer into BUSY and BUSY-TENTATIVE time,
against a minute-by-minute reference."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability.intervals import Interval, merge, subtract

T0 = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def spans() -> st.SearchStrategy[list[Interval]]:
    pair = st.tuples(st.integers(0, 200), st.integers(1, 60))
    return st.lists(pair, max_size=8).map(
        lambda pairs: merge((T0 + dt.timedelta(minutes=a), T0 + dt.timedelta(minutes=a + n)) for a, n in pairs)
    )


def minutes(intervals: list[Interval]) -> set[int]:
    return {
        m for a, b in intervals for m in range((a - T0) // dt.timedelta(minutes=1), (b - T0) // dt.timedelta(minutes=1))
    }


@given(a=spans(), b=spans())
def test_subtract_keeps_exactly_what_b_does_not_cover(a: list[Interval], b: list[Interval]) -> None:
    got = subtract(a, b)
    assert minutes(got) == minutes(a) - minutes(b)
    assert got == sorted(got) and all(x < y for x, y in got)
    assert all(got[i][1] <= got[i + 1][0] for i in range(len(got) - 1))
