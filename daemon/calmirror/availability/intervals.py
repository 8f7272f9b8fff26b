"""Half-open UTC intervals: the one currency of the availability engine and the slot finder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

Interval = tuple[dt.datetime, dt.datetime]
_FIRST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)


def shift(instant: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """`instant + delta`, held at the ends of time: windows and events near the years 1 and
    9999 (valid data: a yearly series from the year 1) must not raise OverflowError."""
    try:
        return instant + delta
    except OverflowError:
        return _LAST if delta > dt.timedelta(0) else _FIRST


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and merge; touching intervals merge too, as back-to-back meetings leave no gap."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def merge_clipped(pairs: list[tuple[int, int]], lo_end: int, hi_end: int) -> list[tuple[int, int]]:
    """`merge` of integer pairs clipped to [lo_end, hi_end), sorting `pairs` in place: one pass
    without a call per pair, as the busy index hands over ~5,600 pairs per 30 days at 10,000
    events. The current island starts empty at `lo_end`, which also clips what began before."""
    pairs.sort()
    merged: list[tuple[int, int]] = []
    cur_lo = cur_hi = lo_end
    for lo, hi in pairs:
        if hi > hi_end:
            hi = hi_end
        if hi <= cur_hi:
            continue  # inside the current island, or before the window
        if lo > cur_hi:
            if lo >= hi:
                continue
            if cur_hi > cur_lo:
                merged.append((cur_lo, cur_hi))
            cur_lo = lo
        cur_hi = hi
    if cur_hi > cur_lo:
        merged.append((cur_lo, cur_hi))
    return merged


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The overlap of two sorted, merged lists, in one linear walk."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The parts of sorted, merged `a` that no interval of sorted, merged `b` covers."""
    out: list[Interval] = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] <= lo:
            j += 1
        k = j
        while k < len(b) and b[k][0] < hi:
            if b[k][0] > lo:
                out.append((lo, b[k][0]))
            lo = max(lo, b[k][1])
            k += 1
        if lo < hi:
            out.append((lo, hi))
    return out
