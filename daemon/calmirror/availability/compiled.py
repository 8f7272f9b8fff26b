"""What compiling a calendar produces, and the occurrences expanding it yields.

`availability.recurrence` fills these in once per calendar; `availability.expansion` walks
them per query and remembers stretches of a series' occurrences in `Block`s.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from calmirror.availability import rrule_bounds as rb
from calmirror.availability.instants import NEVER, Time
from calmirror.availability.library_series import Adapter
from calmirror.availability.rules import EventInfo


@dataclass(slots=True, eq=False)
class Single:
    uid: str
    info: EventInfo
    start: Time
    end: Time
    lo: dt.datetime  # UTC bounds, widened for floating and all-day values
    hi: dt.datetime


@dataclass(slots=True, eq=False)
class CompiledSeries:
    uid: str
    series: Any
    master: Adapter | None
    modifications: list[Adapter]
    rules: list[rb.RuleInfo]
    kind: str  # "aware" | "floating" | "date"
    start0: dt.datetime | None  # master DTSTART as naive wall time of its own zone
    duration: dt.timedelta
    lead: dt.timedelta  # how long before a window an occurrence may start and still reach it
    travel: dt.timedelta = dt.timedelta(0)  # the longest travel time of master and overrides
    lo: dt.datetime = NEVER
    hi: dt.datetime | None = None  # None: the rule never ends
    last_start: Time | None = None  # start of the last rule occurrence, when known
    checkpoints: list[tuple[dt.datetime, int]] = field(default_factory=list)
    scanned_all: bool = False
    rebased: tuple[object, Any] | None = None
    blocks: dict[object, Block] = field(default_factory=dict)  # see expansion.occurrences
    blockable: bool | None = None
    # One walker at a time per series: dateutil's rrule cache never releases its lock
    # once a rule is exhausted (rrulebase._iter_cached breaks out while holding it), so
    # a second thread walking the same rule concurrently would wait forever.
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class CompiledCalendar:
    singles: tuple[Single, ...]
    series: tuple[CompiledSeries, ...]
    skipped: tuple[tuple[str, str], ...]  # (uid, reason)


@dataclass(frozen=True, slots=True)
class Raw:
    """One expanded occurrence in the event's own terms, before conversion to UTC."""

    info: EventInfo
    start: Time
    end: Time
    all_day: bool
    approximate: bool = False


@dataclass(frozen=True, slots=True)
class Span:
    """One occurrence in UTC, not yet judged busy or free (that depends on the query's rules)."""

    info: EventInfo
    start: dt.datetime
    end: dt.datetime
    all_day: bool
    approximate: bool = False


@dataclass(frozen=True, slots=True)
class Block:
    """A remembered stretch of one series' occurrences, sorted by start for bisection."""

    starts: list[dt.datetime]
    spans: list[Span]
    longest: dt.timedelta

    @classmethod
    def of(cls, spans: list[Span]) -> Block:
        spans = sorted(spans, key=lambda s: s.start)
        longest = max((s.end - s.start for s in spans), default=dt.timedelta(0))
        return cls([s.start for s in spans], spans, longest)

    def touching(self, start: dt.datetime, end: dt.datetime) -> list[Span]:
        first = bisect.bisect_left(self.starts, start - self.longest)
        last = bisect.bisect_left(self.starts, end)
        return [s for s in self.spans[first:last] if s.end > start]
