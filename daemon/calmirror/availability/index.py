"""Memos that let one parsed corpus answer many windows quickly.

A caller that holds parsed calendars and asks about many windows (the web week handed
calendars, the tests' and benchmarks' corpora) walks them once. The daemon itself answers
from the busy index in the state database (`availability.sources`) and parses only what it
computes entries from, with `remember=False`. Two memos make repeated walks cheap, both keyed by object
identity and both only ever holding what is derived from the calendars themselves, never
from a query's rules or window:

* per calendar, its `CompiledCalendar` (UID groups, busy summaries, rule bounds), dropped
  when the calendar object is garbage-collected;
* per source content (the exact sequence of calendar objects), an index: single events
  sorted by their earliest possible start, so a window bisects to its few hundred
  candidates instead of looping over 10,000 events. The last `INDEXES_KEPT` indexes are
  kept; each holds its calendars alive, which is what makes the identity key safe.

Calendars handed in must not be mutated afterwards: a changed resource is a new parse,
hence a new object, hence new entries. Nothing here is keyed by a TZID: compiling resolves
each calendar's zones from its own VTIMEZONEs (`availability.zones`), so two objects that
both define `Customized Time Zone` keep their own definitions however long they are cached.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import icalendar

from calmirror.availability.compiled import CompiledCalendar, CompiledSeries, Single
from calmirror.availability.intervals import shift
from calmirror.availability.recurrence import compile_calendar

INDEXES_KEPT = 16
SHORT = dt.timedelta(days=10)  # singles spanning less (margins for floating times included) are bisected

_compiled: dict[int, tuple[weakref.ref[icalendar.Calendar], CompiledCalendar]] = {}
_indexes: OrderedDict[tuple[int, ...], SourceIndex] = OrderedDict()
# The daemon's guard and free-busy answers may query from several threads. One lock
# around building keeps the memos consistent and stops two threads compiling the same
# 10,000 calendars at once; lookups of finished entries only hold it briefly.
_lock = threading.RLock()


def _forget(key: int, ref: weakref.ref[icalendar.Calendar]) -> None:
    entry = _compiled.get(key)
    if entry is not None and entry[0] is ref:
        _compiled.pop(key, None)


def compiled(calendar: icalendar.Calendar) -> CompiledCalendar:
    """The calendar's compiled form, built on first use."""
    key = id(calendar)
    entry = _compiled.get(key)
    if entry is not None and entry[0]() is calendar:
        return entry[1]
    with _lock:
        entry = _compiled.get(key)
        if entry is not None and entry[0]() is calendar:
            return entry[1]
        result = compile_calendar(calendar)
        ref = weakref.ref(calendar, functools.partial(_forget, key))
        _compiled[key] = (ref, result)
        return result


@dataclass(frozen=True, slots=True)
class SourceIndex:
    calendars: tuple[icalendar.Calendar, ...]  # held so that the identity key stays valid
    starts: list[dt.datetime]  # `lo` of each short single, sorted
    short: list[Single]
    long: list[Single]
    series: list[CompiledSeries]
    skipped: list[tuple[str, str]]

    def singles(self, start: dt.datetime, end: dt.datetime) -> list[Single]:
        """Singles whose bounds touch [start, end): a bisected slice plus the long ones."""
        first = bisect.bisect_left(self.starts, shift(start, -SHORT))
        last = bisect.bisect_left(self.starts, end)
        return [s for s in self.short[first:last] if s.hi > start] + [
            s for s in self.long if s.lo < end and s.hi > start
        ]


def index(calendars: Sequence[icalendar.Calendar], remember: bool = True) -> SourceIndex:
    """The source's index; `remember=False` for one-off content such as a guard's candidate,
    which must not push the daemon's real sources out of the memo."""
    key = tuple(map(id, calendars))
    with _lock:
        found = _indexes.get(key)
        if found is not None:
            _indexes.move_to_end(key)
            return found
        built = _build(calendars)
        if remember:
            _indexes[key] = built
            while len(_indexes) > INDEXES_KEPT:
                _indexes.popitem(last=False)
        return built


def single_index(single: Single) -> SourceIndex:
    """The index of a resource holding one single event read without icalendar
    (`simple_event`), shaped as `_build` shapes it."""
    if single.hi - single.lo < SHORT:
        return SourceIndex((), [single.lo], [single], [], [], [])
    return SourceIndex((), [], [], [single], [], [])


def _build(calendars: Sequence[icalendar.Calendar]) -> SourceIndex:
    short: list[Single] = []
    long: list[Single] = []
    series: list[CompiledSeries] = []
    skipped: list[tuple[str, str]] = []
    for calendar in calendars:
        part = compiled(calendar)
        for single in part.singles:
            (short if single.hi - single.lo < SHORT else long).append(single)
        series.extend(part.series)
        skipped.extend(part.skipped)
    short.sort(key=lambda s: s.lo)
    return SourceIndex(tuple(calendars), [s.lo for s in short], short, long, series, skipped)


def clear_cache() -> None:
    """Forget every compiled calendar and index (cold-start measurements, tests)."""
    with _lock:
        _compiled.clear()
        _indexes.clear()
