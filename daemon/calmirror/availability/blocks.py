"""Merged busy time kept per week while the state database does not change.

A free-busy REPORT or `availability` over 30 days reads ~5,600 (start, end) pairs from the
busy index at 10,000 events and merges them into a few dozen intervals: the read is nearly
all of the answer's cost (3–4 ms of it). Booking pages ask the same weeks again and again,
and between two changes of the calendars the answer cannot differ. So the merged busy time
of each aligned week (`BLOCK_US`), per query-time rules, is kept until the database changes;
a window is the weeks it touches, joined and clipped. Merging per week and then across weeks
gives exactly the one merge (touching intervals join, so a block cut at a week's edge joins
its other part again).

"The database changed" is `State.data_version()`: SQLite's `data_version` on a connection
that never writes, so it moves with every commit of this process or another; any write at all
(an outbox row, a push) empties the memo, which is conservative, never stale. Queries that
skip UIDs (the guard's, each about one candidate) are not kept. Nothing parsed is kept: a few
dozen integer pairs per week, for at most `BLOCKS_KEPT` weeks.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from calmirror.availability.intervals import merge_clipped
from calmirror.state.busy import SpanQuery

BLOCK_US = 7 * 86_400 * 1_000_000
BLOCKS_KEPT = 512

Pairs = list[tuple[int, int]]


class MergedBlocks:
    def __init__(self, generation: Callable[[], Hashable], extents: Callable[[SpanQuery], Pairs]) -> None:
        self._generation = generation
        self._extents = extents
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[Hashable, int], Pairs] = OrderedDict()
        self._kept_at: Hashable = None
        self.computed = 0  # weeks read from the index, for tests and benchmarks

    def pairs(self, query: SpanQuery) -> Pairs:
        """Busy (start, end) pairs covering the query's window (not clipped to it, not merged
        across weeks): what `merge_clipped` over the window makes the merged busy time of."""
        if query.skip_uids:
            return self._extents(query)
        generation = self._generation()  # read before the index: what is kept is at least this new
        with self._lock:
            if generation != self._kept_at:
                self._kept.clear()
                self._kept_at = generation
        rules = (
            tuple(query.sources),
            tuple(query.allday),
            tuple(query.mirrors),
            query.travel,
            query.tentative,
            query.unavailable,
        )
        out: Pairs = []
        first = query.start - query.start % BLOCK_US
        for lo in range(first, query.end, BLOCK_US):
            key = (rules, lo)
            with self._lock:
                found = self._kept.get(key)
                if found is not None:
                    self._kept.move_to_end(key)
            if found is None:
                hi = lo + BLOCK_US
                found = merge_clipped(self._extents(dataclasses.replace(query, start=lo, end=hi)), lo, hi)
                self.computed += 1
                with self._lock:
                    if self._kept_at == generation:
                        self._kept[key] = found
                        while len(self._kept) > BLOCKS_KEPT:
                            self._kept.popitem(last=False)
            out.extend(found)
        return out
