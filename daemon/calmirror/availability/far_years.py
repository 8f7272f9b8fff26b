"""Cutting the part of a window outside the busy index's horizon into calendar years.

Past the horizon, occurrences are kept a year at a time (`state/busy_far.py`), each year
holding every occurrence that touches it. A window is answered piece by piece, and an
occurrence that touches two pieces (or a piece and the horizon, which the index answers)
must be counted once, yet two equal occurrences (an override moved onto another instance's
time) must both count. So no de-duplication: each piece keeps only the occurrences the
pieces before it cannot have answered, by where they start or end.
"""

from __future__ import annotations

import datetime as dt

from calmirror.availability.spans import from_us, to_us
from calmirror.state.busy_far import FarPiece

UTC = dt.UTC
LOWEST = -(2**62)
HIGHEST = 2**62
_LAST = to_us(dt.datetime.max.replace(tzinfo=UTC)) + 1


def year_of(us: int) -> int:
    return from_us(us).year


def year_bounds(year: int) -> tuple[int, int]:
    """[January 1, next January 1) of `year` in UTC microseconds."""
    start = to_us(dt.datetime(year, 1, 1, tzinfo=UTC))
    return start, (_LAST if year == dt.MAXYEAR else to_us(dt.datetime(year + 1, 1, 1, tzinfo=UTC)))


def pieces(window: tuple[int, int], horizon: tuple[int, int]) -> list[FarPiece]:
    """The pieces of `window` outside `horizon`, a year each.

    An occurrence is answered by the first piece it touches: a later piece of the same
    part keeps only occurrences starting in its year, the part after the horizon only those
    starting after it and the part before it only those ending before it, when the window
    also reaches inside (the index answers those)."""
    (a, b), (h0, h1) = window, horizon
    inside = max(a, h0) < min(b, h1)
    parts = []
    if a < h0:
        parts.append((a, min(b, h0), LOWEST, h0 if inside else HIGHEST))
    if b > h1:
        parts.append((max(a, h1), b, h1 if inside else LOWEST, HIGHEST))
    out = []
    for p0, p1, min_start, max_end in parts:
        for year in range(year_of(p0), year_of(p1 - 1) + 1):
            ys, ye = year_bounds(year)
            first = year == year_of(p0)
            out.append(FarPiece(year, max(p0, ys), min(p1, ye), min_start if first else max(min_start, ys), max_end))
    return out
