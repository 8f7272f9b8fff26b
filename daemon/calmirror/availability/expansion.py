"""Query-time expansion: which series object to walk for a window, and walking it.

The compiled series of `availability.recurrence` are walked as they are when the window is
close to DTSTART. Far from it, the master is rebased onto a later DTSTART on the rule's
own period lattice (COUNT reduced by exactly what was skipped, or via checkpoints of a
COUNT rule enumerated at compile time), so the work follows the window, not the history.
A COUNT rule no bounded walk can count to the window is walked without its COUNT (a
superset, marked approximate: busy time is never lost). Only a few pathological shapes
(several dense RRULEs, filtered sub-daily rules over millions of periods) raise `TooDense`
and are reported.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

from icalendar.prop import vDDDTypes, vRecur
from recurring_ical_events.util import convert_to_datetime

from calmirror.availability import rrule_bounds as rb
from calmirror.availability.compiled import Block, CompiledSeries, Raw, Span
from calmirror.availability.durations import DST_SLACK, rfc_end
from calmirror.availability.instants import UTC, Time, to_utc
from calmirror.availability.intervals import shift
from calmirror.availability.library_series import Adapter, CachedSeries, CapReached, OneOffSeries

DIRECT_LIMIT = 512  # occurrences from DTSTART worth walking through dateutil's own cache
MAX_PREWINDOW = 20_000  # occurrences we accept walking before the window on a slow path
MAX_PERIODS = 5_000_000  # periods dateutil may inspect for a filtered sub-daily rule (~1 s)
BLOCK = dt.timedelta(days=63)  # expansion is remembered per series in blocks this long
BLOCK_LIMIT = 1_000  # series with more occurrences per block are expanded per window instead
BLOCKS_KEPT = 3  # per series and zone
_EPOCH = dt.datetime(2000, 1, 3, tzinfo=UTC)


class TooDense(Exception):
    """No bounded expansion exists for this series and window; the series is reported."""


def _rebased(cs: CompiledSeries, start: dt.datetime, count: int | None) -> tuple[Any, bool]:
    assert cs.master is not None and cs.start0 is not None
    rule = cs.rules[0]
    component = cs.master.component.copy()
    original: Time = cs.master.start
    value: Time
    if cs.kind == "date":
        value = start.date()
    elif isinstance(original, dt.datetime) and original.tzinfo is not None:
        value = start.replace(tzinfo=original.tzinfo)
    else:
        value = start
    component.pop("DURATION", None)
    component["DTSTART"] = vDDDTypes(value)
    component["DTEND"] = vDDDTypes(value + cs.duration)
    parts = rb.explicit(rule.recur, cs.start0)
    parts.pop("COUNT", None)
    if count is not None:
        parts["COUNT"] = [count]
    component["RRULE"] = vRecur(parts)
    cacheable = rule.freq in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY") and rule.per_period <= 64
    kind = CachedSeries if cacheable else OneOffSeries
    rebased = Adapter(component, cs.master.info)
    rebased.length = cs.master.length  # the original's DURATION, not the DTEND written here
    return kind([rebased, *cs.modifications]), cacheable


def _choose_series(cs: CompiledSeries, first: dt.datetime, last: dt.datetime) -> tuple[Any, bool]:
    """The series object to walk for a window given as naive wall times of the series' zone,
    and whether its occurrences are a conservative superset (marked approximate)."""
    if not cs.rules or cs.start0 is None or cs.master is None:
        return cs.series, False
    if sum(rb.steps(r, cs.start0, last) for r in cs.rules) <= DIRECT_LIMIT:
        return cs.series, False
    if len(cs.rules) > 1:  # no rebasing for several RRULEs (deprecated by RFC 5545 anyway)
        if sum(rb.steps(r, cs.start0, first) for r in cs.rules) > MAX_PREWINDOW:
            raise TooDense("several RRULEs too dense to expand")
        return OneOffSeries([cs.master, *cs.modifications]), False
    rule = cs.rules[0]
    target = first - cs.lead - rb.period_length(rule)
    start, count, rough = cs.start0, rule.count, False
    if target > cs.start0:
        snap = max(1, DIRECT_LIMIT // (4 * rule.per_period))  # reuse one rebase across nearby windows
        k = max(rb.periods(rule, cs.start0, target) - 1, 0) // snap * snap
        if rule.count is None or rule.count > rb.steps(rule, cs.start0, last, counted=False):
            start, count = rb.lattice(rule, cs.start0, k), None  # COUNT cannot run out in time
        elif rule.one_per_period:
            start, count = rb.lattice(rule, cs.start0, k), rule.count - k
            if count <= 0:  # every rule occurrence lies before the window
                return _bare(cs), False
        else:
            usable = [cp for cp in cs.checkpoints if cp[0] <= target]
            if usable:
                start, done = usable[-1]
                count = rule.count - done
            if not cs.scanned_all and rb.steps(rule, start, first) > MAX_PREWINDOW:
                # Where this COUNT runs out is beyond any bounded walk. Walking on without it
                # can only add occurrences: busy time is never lost, and it is marked approximate.
                start, count, rough = rb.lattice(rule, cs.start0, k), None, True
    if rule.filtered_subdaily and rb.periods(rule, start, last) > MAX_PERIODS:
        raise TooDense("sub-daily rule with filters spans too many periods in this window")
    if (start, count) == (cs.start0, rule.count):
        return OneOffSeries([cs.master, *cs.modifications]), rough
    key = (start, count)
    if cs.rebased is not None and cs.rebased[0] == key:
        return cs.rebased[1], rough
    series, cacheable = _rebased(cs, start, count)
    if cacheable:
        cs.rebased = (key, series)
    return series, rough


def _bare(cs: CompiledSeries) -> Any:
    assert cs.master is not None
    component = cs.master.component.copy()
    del component["RRULE"]
    return OneOffSeries([Adapter(component, cs.master.info), *cs.modifications])


# --- expanding ----------------------------------------------------------------------------------


def expand(cs: CompiledSeries, window: tuple[dt.datetime, dt.datetime], tz: dt.tzinfo) -> Iterator[Raw]:
    """Occurrences of one series that may touch the UTC window, in the event's own terms.

    Floating and all-day series are queried in the configured zone's wall time, widened
    by a few hours so a DST shift at the window's edge loses nothing; the caller clips.
    """
    ws, we = window
    span: tuple[Time, Time]
    if cs.kind == "aware":
        # (an occurrence's exact end may lie past the library's wall-clock one, `rfc_end`)
        span = (ws - DST_SLACK, we)
        zone = cs.master.start.tzinfo if cs.master is not None else UTC
        first, last = span[0].astimezone(zone).replace(tzinfo=None), we.astimezone(zone).replace(tzinfo=None)
    else:
        widen = dt.timedelta(hours=3)
        first = ws.astimezone(tz).replace(tzinfo=None) - widen
        last = we.astimezone(tz).replace(tzinfo=None) + widen
        span = (first, last)
    series, rough = _choose_series(cs, first, last)
    seen: set[int] = set()
    try:
        for occurrence in series.between(*span):
            seen.add(id(occurrence.adapter))
            start = occurrence.start
            adapter = occurrence.adapter
            approximate = rough and not adapter.is_modification()
            end = rfc_end(adapter.length, adapter.duration, start, occurrence.end)
            yield Raw(adapter.info, start, end, not isinstance(start, dt.datetime), approximate)
    except CapReached as cap:
        yield from _rest_of(cs, cap.at, span, seen)


def _rest_of(cs: CompiledSeries, at: dt.datetime, span: tuple[Time, Time], seen: set[int]) -> Iterator[Raw]:
    """Stand-in for the occurrences beyond the cap: busy from there to the series' end."""
    assert cs.master is not None
    end = convert_to_datetime(span[1], at.tzinfo)
    if cs.last_start is not None:
        last = convert_to_datetime(cs.last_start, at.tzinfo)
        if last < end:  # (a last start near 9999-12-31 plus the duration would overflow)
            end = min(end, last + cs.duration)
    if cs.duration > dt.timedelta(0) and end > at:
        yield Raw(cs.master.info, at, end, cs.kind == "date", approximate=True)
    for mod in cs.modifications:
        if id(mod) not in seen and mod.is_in_span(*span):
            yield Raw(mod.info, mod.start, mod.end, not isinstance(mod.start, dt.datetime))


def _blockable(cs: CompiledSeries) -> bool:
    if cs.blockable is None:
        start = cs.start0
        cs.blockable = (
            start is None or sum(rb.steps(r, start, start + BLOCK, counted=False) for r in cs.rules) <= BLOCK_LIMIT
        )
    return cs.blockable


def occurrences(cs: CompiledSeries, window: tuple[dt.datetime, dt.datetime], tz: dt.tzinfo) -> list[Span]:
    """The series' occurrences that may touch the UTC window, converted to UTC.

    Expansion goes through recurring-ical-events at ~50 us per call and series, which for
    hundreds of live series is most of a query. So the answer is remembered per series in
    fixed 63-day blocks (per configured zone for floating and all-day series): the daemon
    asking about nearby windows, as the guard and free-busy REPORTs do, expands each block
    once. Busy/free is judged later, so one block serves any `Rules`. Dense series (more
    than `BLOCK_LIMIT` occurrences a block) are expanded for the exact window every time,
    so the occurrence cap never depends on block alignment. The series' lock is held
    throughout: blocks and the library's rule objects are shared between threads.
    """
    with cs.lock:
        if not _blockable(cs):  # (sorted by start, as the blocks give them)
            return sorted((_span(raw, tz) for raw in expand(cs, window, tz)), key=lambda span: span.start)
        ws, we = window
        first = (ws - _EPOCH) // BLOCK
        last = (we - _EPOCH - dt.timedelta(microseconds=1)) // BLOCK
        found: list[Span] = []
        kept: Counter[Span] = Counter()
        for number in range(first, last + 1):
            key = (number, None if cs.kind == "aware" else tz)
            block = cs.blocks.get(key)
            if block is None:
                start = shift(_EPOCH, number * BLOCK)
                block = Block.of([_span(raw, tz) for raw in expand(cs, (start, shift(start, BLOCK)), tz)])
                cs.blocks[key] = block
                while len(cs.blocks) > BLOCKS_KEPT:
                    del cs.blocks[next(iter(cs.blocks))]
            # An occurrence touching two blocks is in both, and taken once; two equal
            # occurrences (an override moved onto another instance's time) are in every
            # block either is in, and both are taken, however many blocks the window spans.
            here: Counter[Span] = Counter()
            for span in block.touching(ws, we):
                here[span] += 1
                if here[span] > kept[span]:
                    kept[span] += 1
                    found.append(span)
    return found


def in_one_walk(cs: CompiledSeries, window: tuple[dt.datetime, dt.datetime], tz: dt.tzinfo) -> list[Span] | None:
    """The series' occurrences that may touch a long UTC window, from one walk, sorted by
    start as `occurrences` returns them; None where that walk could answer otherwise than
    the blocks, and the caller asks `occurrences`.

    The busy index walks each resource once over its whole horizon, where the blocks that
    make repeated queries cheap cost twice the work (a rebase and a library call per 63
    days). One walk gives the same occurrences wherever both are exact, so it is used only
    where the blocks cannot be approximate or skip the series when it is not (one rule at
    most, and a COUNT rule with filters only when compiling counted all of it) and its own
    answer is exact (no stand-in for a capped rest, no rule too dense for this window).
    """
    if len(cs.rules) > 1 or (
        not cs.scanned_all and any(r.count is not None and not r.one_per_period for r in cs.rules)
    ):
        return None
    if cs.kind == "date" and any(r.freq in ("HOURLY", "MINUTELY", "SECONDLY") for r in cs.rules):
        return None  # dates of a sub-daily rule repeat: how often depends on the walk's windows
    with cs.lock:
        try:
            found = [_span(raw, tz) for raw in expand(cs, window, tz)]
        except Exception:  # TooDense, or what the library chokes on: the blocks decide
            return None
    if any(span.approximate for span in found) or len({(s.start, s.end) for s in found}) < len(found):
        return None  # equal occurrences: the blocks decide how many count
    ws, we = window
    return sorted((span for span in found if span.start < we and span.end > ws), key=lambda span: span.start)


def _span(raw: Raw, tz: dt.tzinfo) -> Span:
    return Span(raw.info, to_utc(raw.start, tz), to_utc(raw.end, tz), raw.all_day, raw.approximate)
