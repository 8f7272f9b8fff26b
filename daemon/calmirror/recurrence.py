"""Window-bounded expansion of VEVENTs on top of recurring-ical-events.

recurring-ical-events gets the semantics right (RECURRENCE-ID overrides, EXDATE in any
TZID form, RDATE periods, RANGE=THISANDFUTURE, zones defined by their own VTIMEZONE), but
underneath it dateutil walks every period from DTSTART and the library materialises
every occurrence of the window. This module keeps the library for the semantics and
bounds the work (the arithmetic lives in `calmirror.rrule_bounds`):

* **Compile once.** Each calendar's VEVENTs are grouped by UID into library `Series`
  objects, rules that can never match are reduced to their DTSTART, filtered sub-daily
  rules are rewritten as DAILY ones, and each series learns its UTC extent, so a query
  skips a finished series without touching dateutil.
* **Fast-forward.** When more than `DIRECT_LIMIT` occurrences lie between DTSTART and
  the window, the master is rebased onto a later DTSTART on the rule's own period
  lattice, COUNT reduced by what was skipped (exactly, or via checkpoints recorded when
  a COUNT rule was enumerated at compile time). The rebased DTSTART lies before the
  window by more than the event's length, so the occurrence RFC 5545 grants to DTSTART
  never shows.
* **Occurrence cap.** At most `MAX_OCCURRENCES` occurrences of a series are expanded per
  query. The rest of the series up to its known end (else the window end) is returned as
  one busy stretch marked approximate: a rule that dense blocks the time in practice,
  and erring towards busy cannot double-book anyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import icalendar
import x_wr_timezone
from dateutil.rrule import rrulestr as dateutil_rrulestr
from icalendar.prop import vDDDTypes, vRecur
from recurring_ical_events import EventAdapter, Occurrence, Series
from recurring_ical_events.constants import NEGATIVE_RRULE_COUNT_REGEX
from recurring_ical_events.util import compare_greater, convert_to_datetime

from calmirror import rrule_bounds as rb
from calmirror.busy_rules import EventInfo, event_info

Time = dt.date | dt.datetime
UTC = dt.UTC

DIRECT_LIMIT = 512  # occurrences from DTSTART worth walking through dateutil's own cache
MAX_OCCURRENCES = 5_000  # per rule per query; the library spends ~15 us on each
COUNT_SCAN_LIMIT = 50_000  # COUNT rules with filters are enumerated once, up to here
CHECKPOINT_EVERY = 250  # occurrences between fast-forward points of a scanned COUNT rule
MAX_PREWINDOW = 20_000  # occurrences we accept walking before the window on a slow path
MAX_PERIODS = 5_000_000  # periods dateutil may inspect for a filtered sub-daily rule (~1 s)
_MARGIN = dt.timedelta(days=2)  # covers any UTC offset (-12..+14) when bounding floating times
_NEVER = dt.datetime.min.replace(tzinfo=UTC)


class _CapReached(Exception):
    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at)
        self.at = at


class TooDense(Exception):
    """No bounded expansion exists for this series and window; the series is reported."""


class _Adapter(EventAdapter):  # type: ignore[misc]
    """The library's VEVENT adapter, carrying our busy summary of the component."""

    def __init__(self, component: icalendar.Component, info: EventInfo) -> None:
        super().__init__(component)
        self.component = component
        self.info = info


class _Occurrence(Occurrence):  # type: ignore[misc]
    def __init__(self, adapter: _Adapter, start: Time | None = None, end: Time | None = None) -> None:
        super().__init__(adapter, start, end)
        self.adapter = adapter


class _BoundedRules(Series.RecurrenceRules):  # type: ignore[misc]
    """Lazy, capped rule walking; the library's version builds whole-window lists."""

    cache = True

    def rrulestr(self, rule_string: str) -> Any:
        rule_string = NEGATIVE_RRULE_COUNT_REGEX.sub("", rule_string)
        rule = dateutil_rrulestr(rule_string, dtstart=self.start, cache=self.cache)
        rule.string = rule_string
        rule.until = self._get_rrule_until(rule)
        return rule

    def rrule_between(self, span_start: Time, span_stop: Time) -> Iterator[Time]:
        first = convert_to_datetime(span_start, self.tzinfo)
        last = convert_to_datetime(span_stop, self.tzinfo)
        for rule in self.rrules:
            for n, start in enumerate(rule.xafter(first, inc=True)):
                if start > last:
                    break
                if n >= MAX_OCCURRENCES:
                    raise _CapReached(start)
                if rule.until is None or not compare_greater(start, rule.until):
                    yield start


class _UncachedRules(_BoundedRules):
    cache = False


class _CachedSeries(Series):  # type: ignore[misc]
    RecurrenceRules = _BoundedRules

    def occurrence(self, adapter: _Adapter, start: Time | None = None, end: Time | None = None) -> Occurrence:
        return _Occurrence(adapter, start, end)


class _OneOffSeries(_CachedSeries):
    """For rebased or dense series: dateutil must not keep what it walked."""

    RecurrenceRules = _UncachedRules


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
    master: _Adapter | None
    modifications: list[_Adapter]
    rules: list[rb.RuleInfo]
    kind: str  # "aware" | "floating" | "date"
    start0: dt.datetime | None  # master DTSTART as naive wall time of its own zone
    duration: dt.timedelta
    lead: dt.timedelta  # how long before a window an occurrence may start and still reach it
    lo: dt.datetime = _NEVER
    hi: dt.datetime | None = None  # None: the rule never ends
    last_start: Time | None = None  # start of the last rule occurrence, when known
    checkpoints: list[tuple[dt.datetime, int]] = field(default_factory=list)
    scanned_all: bool = False
    rebased: tuple[object, Any] | None = None


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


def reason(exc: BaseException) -> str:
    """A short, log-safe reason: one line, no component dump."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def bound(value: Time, upper: bool) -> dt.datetime:
    """A UTC instant certainly before (or after) `value`, whatever zone floats it."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    naive = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    return naive.replace(tzinfo=UTC) + (_MARGIN if upper else -_MARGIN)


def _wall(value: Time) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime(value.year, value.month, value.day)


def _kind(value: Time) -> str:
    if not isinstance(value, dt.datetime):
        return "date"
    return "floating" if value.tzinfo is None else "aware"


# --- compiling ---------------------------------------------------------------------------------


def compile_calendar(calendar: icalendar.Calendar) -> CompiledCalendar:
    """Group VEVENTs by UID and prepare each group; a bad group is skipped, not fatal."""
    if str(calendar.get("CALSCALE", "GREGORIAN")).upper() != "GREGORIAN":
        return CompiledCalendar((), (), (("", "non-Gregorian CALSCALE"),))
    skipped: list[tuple[str, str]] = []
    try:
        calendar = x_wr_timezone.to_standard(calendar)
    except Exception as exc:  # a bad X-WR-TIMEZONE must not hide the events themselves
        skipped.append(("", f"X-WR-TIMEZONE ignored: {reason(exc)}"))
    groups: dict[str, list[icalendar.Component]] = {}
    for n, component in enumerate(calendar.walk("VEVENT")):
        groups.setdefault(str(component.get("UID") or f"<no UID #{n}>"), []).append(component)
    singles: list[Single] = []
    series: list[CompiledSeries] = []
    for uid, components in groups.items():
        try:
            recurring = ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")
            if len(components) == 1 and not any(key in components[0] for key in recurring):
                singles.append(_compile_single(uid, components[0]))
            else:
                series.append(_compile_series(uid, components))
        except Exception as exc:  # third-party data: any malformation skips this event only
            skipped.append((uid, reason(exc)))
    return CompiledCalendar(tuple(singles), tuple(series), tuple(skipped))


def _compile_single(uid: str, component: icalendar.Component) -> Single:
    adapter = EventAdapter(component)
    start, end = adapter.start, adapter.end  # the library's DTEND/DURATION/all-day defaults
    return Single(uid, event_info(component), start, end, bound(start, False), bound(end, True))


def _rrules(component: icalendar.Component) -> list[Any]:
    value = component.get("RRULE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _simplified(master: _Adapter) -> tuple[_Adapter, list[rb.RuleInfo]]:
    """The master with infeasible rules dropped and filtered sub-daily rules made DAILY."""
    start0 = _wall(master.start)
    kept: list[dict[str, list[Any]]] = []
    changed = False
    for recur in _rrules(master.component):
        parts = rb.parts_of(recur)
        if not rb.feasible(parts, start0):
            changed = True
            continue
        daily = rb.daily_equivalent(parts, start0)
        changed = changed or daily is not None
        kept.append(daily or parts)
    if changed:
        component = master.component.copy()
        component.pop("RRULE", None)
        for parts in kept:
            component.add("RRULE", vRecur(parts))
        master = _Adapter(component, master.info)
    return master, [rb.rule_info(parts, start0) for parts in kept]


def _compile_series(uid: str, components: Sequence[icalendar.Component]) -> CompiledSeries:
    adapters = [_Adapter(c, event_info(c)) for c in components]
    series = _CachedSeries(adapters)
    master: _Adapter | None = series.recurrence.core if series.recurrence.has_core else None
    mods: list[_Adapter] = list(series.modifications)
    rules: list[rb.RuleInfo] = []
    if master is not None and _rrules(master.component):
        simpler, rules = _simplified(master)
        if simpler is not master:
            master, series = simpler, _CachedSeries([simpler, *mods])
    durations = [a.duration for a in (master, *mods) if a is not None]
    if master is not None:
        durations.extend(series.recurrence.replace_ends.values())
    move = max([abs(a.move_recurrences_by) for a in mods], default=dt.timedelta(0))
    first = master if master is not None else mods[0]
    cs = CompiledSeries(
        uid=uid,
        series=series,
        master=master,
        modifications=mods,
        rules=rules,
        kind=_kind(first.start),
        start0=_wall(master.start) if master is not None else None,
        duration=master.duration if master is not None else dt.timedelta(0),
        lead=max(durations) + move,
    )
    if not _scan_rules(cs):  # the filters never meet the INTERVAL lattice: DTSTART only
        assert master is not None
        bare = master.component.copy()
        del bare["RRULE"]
        cs.master = _Adapter(bare, master.info)
        cs.series, cs.rules, cs.checkpoints, cs.last_start = _CachedSeries([cs.master, *mods]), [], [], None
    _set_extent(cs, max(durations), move)
    return cs


def _scan_rules(cs: CompiledSeries) -> bool:
    """Learn where each rule ends, and checkpoints for COUNT rules that need them.

    Also surfaces rules dateutil refuses (ValueError on the first step) at compile time,
    so a bad series is skipped once instead of failing every query. Returns False when a
    rule yields nothing at all.
    """
    if cs.master is None or cs.start0 is None or not cs.rules:
        return True
    by_text = {r.text: r for r in cs.rules}
    lasts: list[Time | None] = []
    for rule in cs.series.recurrence.rrules[1:]:
        info = by_text.get(rule.string, cs.rules[0])
        fresh = rule.replace(cache=False)
        if info.count is None or info.one_per_period:
            if next(iter(fresh), None) is None:
                return False
            if info.count is None:
                lasts.append(rule.until)
            else:
                try:
                    lasts.append(rb.lattice(info, cs.start0, info.count - 1))
                except OverflowError:  # COUNT=1000000000 outlives the datetime range
                    lasts.append(None)
            continue
        n, last, complete = 0, None, True
        for start in fresh:
            if n >= COUNT_SCAN_LIMIT:
                complete = False
                break
            if n % CHECKPOINT_EVERY == 0 and len(cs.rules) == 1:
                cs.checkpoints.append((_wall(start), n))
            last, n = start, n + 1
        if last is None:
            return False
        cs.scanned_all = complete
        lasts.append(last if complete else None)
    if all(v is not None for v in lasts):
        cs.last_start = max((v for v in lasts if v is not None), key=lambda v: bound(v, True))
    return True


def _set_extent(cs: CompiledSeries, longest: dt.timedelta, move: dt.timedelta) -> None:
    starts: list[Time] = []
    ends: list[Time] = []
    for adapter in (cs.master, *cs.modifications):
        if adapter is not None:
            starts.extend((adapter.start, *adapter.recurrence_ids[:1]))
            ends.append(adapter.end)
    if cs.master is not None:
        rdates = list(cs.series.recurrence.rdates)
        starts.extend(rdates)
        ends.extend(rdates)
    cs.lo = min(bound(v, False) for v in starts) - move
    if cs.rules and cs.last_start is None:
        cs.hi = None
        return
    if cs.last_start is not None:
        ends.append(cs.last_start)
    cs.hi = max(bound(v, True) for v in ends) + longest + move


# --- choosing what to walk ------------------------------------------------------------------------


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
    kind = _CachedSeries if cacheable else _OneOffSeries
    return kind([_Adapter(component, cs.master.info), *cs.modifications]), cacheable


def _choose_series(cs: CompiledSeries, first: dt.datetime, last: dt.datetime) -> Any:
    """The series object to walk for a window given as naive wall times of the series' zone."""
    if not cs.rules or cs.start0 is None or cs.master is None:
        return cs.series
    if sum(rb.steps(r, cs.start0, last) for r in cs.rules) <= DIRECT_LIMIT:
        return cs.series
    if len(cs.rules) > 1:  # no rebasing for several RRULEs (deprecated by RFC 5545 anyway)
        if sum(rb.steps(r, cs.start0, first) for r in cs.rules) > MAX_PREWINDOW:
            raise TooDense("several RRULEs too dense to expand")
        return _OneOffSeries([cs.master, *cs.modifications])
    rule = cs.rules[0]
    target = first - cs.lead - rb.period_length(rule)
    start, count = cs.start0, rule.count
    if target > cs.start0:
        snap = max(1, DIRECT_LIMIT // (4 * rule.per_period))  # reuse one rebase across nearby windows
        k = max(rb.periods(rule, cs.start0, target) - 1, 0) // snap * snap
        if rule.count is None or rule.count > rb.steps(rule, cs.start0, last, counted=False):
            start, count = rb.lattice(rule, cs.start0, k), None  # COUNT cannot run out in time
        elif rule.one_per_period:
            start, count = rb.lattice(rule, cs.start0, k), rule.count - k
            if count <= 0:  # every rule occurrence lies before the window
                return _bare(cs)
        else:
            usable = [cp for cp in cs.checkpoints if cp[0] <= target]
            if usable:
                start, done = usable[-1]
                count = rule.count - done
            if not cs.scanned_all and rb.steps(rule, start, first) > MAX_PREWINDOW:
                raise TooDense("COUNT rule too dense to reach this window")
    if rule.filtered_subdaily and rb.periods(rule, start, last) > MAX_PERIODS:
        raise TooDense("sub-daily rule with filters spans too many periods in this window")
    if (start, count) == (cs.start0, rule.count):
        return _OneOffSeries([cs.master, *cs.modifications])
    key = (start, count)
    if cs.rebased is not None and cs.rebased[0] == key:
        return cs.rebased[1]
    series, cacheable = _rebased(cs, start, count)
    if cacheable:
        cs.rebased = (key, series)
    return series


def _bare(cs: CompiledSeries) -> Any:
    assert cs.master is not None
    component = cs.master.component.copy()
    del component["RRULE"]
    return _OneOffSeries([_Adapter(component, cs.master.info), *cs.modifications])


# --- expanding ----------------------------------------------------------------------------------


def expand(cs: CompiledSeries, window: tuple[dt.datetime, dt.datetime], tz: dt.tzinfo) -> Iterator[Raw]:
    """Occurrences of one series that may touch the UTC window, in the event's own terms.

    Floating and all-day series are queried in the configured zone's wall time, widened
    by a few hours so a DST shift at the window's edge loses nothing; the caller clips.
    """
    ws, we = window
    span: tuple[Time, Time]
    if cs.kind == "aware":
        span = (ws, we)
        zone = cs.master.start.tzinfo if cs.master is not None else UTC
        first, last = ws.astimezone(zone).replace(tzinfo=None), we.astimezone(zone).replace(tzinfo=None)
    else:
        widen = dt.timedelta(hours=3)
        first = ws.astimezone(tz).replace(tzinfo=None) - widen
        last = we.astimezone(tz).replace(tzinfo=None) + widen
        span = (first, last)
    series = _choose_series(cs, first, last)
    seen: set[int] = set()
    try:
        for occurrence in series.between(*span):
            seen.add(id(occurrence.adapter))
            start = occurrence.start
            yield Raw(occurrence.adapter.info, start, occurrence.end, not isinstance(start, dt.datetime))
    except _CapReached as cap:
        yield from _rest_of(cs, cap.at, span, seen)


def _rest_of(cs: CompiledSeries, at: dt.datetime, span: tuple[Time, Time], seen: set[int]) -> Iterator[Raw]:
    """Stand-in for the occurrences beyond the cap: busy from there to the series' end."""
    assert cs.master is not None
    end = convert_to_datetime(span[1], at.tzinfo)
    if cs.last_start is not None:
        end = min(end, convert_to_datetime(cs.last_start, at.tzinfo) + cs.duration)
    if cs.duration > dt.timedelta(0) and end > at:
        yield Raw(cs.master.info, at, end, cs.kind == "date", approximate=True)
    for mod in cs.modifications:
        if id(mod) not in seen and mod.is_in_span(*span):
            yield Raw(mod.info, mod.start, mod.end, not isinstance(mod.start, dt.datetime))
