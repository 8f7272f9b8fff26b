"""`merge_clipped`, the busy index's one-pass merge, against `merge` of the clipped pairs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability.intervals import merge, merge_clipped

_PAIR = st.tuples(st.integers(0, 300), st.integers(-20, 80)).map(lambda p: (p[0], p[0] + p[1]))


@given(st.lists(_PAIR, max_size=30), st.integers(0, 300), st.integers(0, 300))
def test_merge_clipped_is_merge_of_the_clipped_pairs(pairs: list[tuple[int, int]], lo: int, hi: int) -> None:
    expected = merge((max(a, lo), min(b, hi)) for a, b in pairs)
    assert merge_clipped(list(pairs), lo, hi) == expected


def test_touching_pairs_merge_and_pairs_outside_the_window_go() -> None:
    pairs = [(5, 10), (10, 20), (25, 30), (40, 50), (-10, 0)]
    assert merge_clipped(pairs, 0, 45) == [(5, 20), (25, 30), (40, 45)]
