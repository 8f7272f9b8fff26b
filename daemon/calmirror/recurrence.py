"""Window-bounded expansion of VEVENTs on top of recurring-ical-events.

recurring-ical-events gets the semantics right (RECURRENCE-ID overrides, EXDATE in any
TZID form, RDATE periods, RANGE=THISANDFUTURE, VTIMEZONE-defined zones), but underneath
it dateutil walks every occurrence from DTSTART and materialises every occurrence in the
window. A 2019 weekly meeting costs a few hundred steps; FREQ=SECONDLY costs millions, and
a rule that can never match (BYMONTH=2;BYMONTHDAY=30) loops until the year 9999. This
module keeps the library for the semantics and adds the bounds:

* **Fast-forward.** When more than `DIRECT_LIMIT` rule steps lie between DTSTART and the
  window, the master is rebased onto a later DTSTART on the rule's own period lattice
  (with dateutil's implicit BY* defaults made explicit), COUNT reduced by the occurrences
  skipped. The rebased DTSTART lies before the window by more than the event's length, so
  the extra occurrence RFC 5545 grants to DTSTART never shows.
* **Occurrence cap.** At most `MAX_OCCURRENCES` occurrences of one rule are expanded per
  query. Beyond that the rest of the series (until its known end, else the window end) is
  reported busy as one interval marked approximate: a rule that dense blocks the time in
  practice, and erring towards busy cannot double-book anyone.
* **Feasibility probe.** Rules whose day filters can never match are detected once, in a
  bounded 400-year yearly/monthly probe (the Gregorian calendar repeats every 400 years),
  and reduced to their DTSTART.

Everything is pure; compiled forms are built once per parsed calendar by the caller.
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

from calmirror.busy_rules import EventInfo, event_info

Time = dt.date | dt.datetime
UTC = dt.UTC

DIRECT_LIMIT = 512  # rule steps from DTSTART worth walking through dateutil's cache
MAX_OCCURRENCES = 20_000  # per rule per query; ~50 ms of dateutil at worst
COUNT_SCAN_LIMIT = 100_000  # COUNT rules with filters are enumerated once up to here
CHECKPOINT_EVERY = 500  # occurrences between fast-forward points of a scanned COUNT rule
MAX_PREWINDOW = 20_000  # rule steps we accept walking before the window on a slow path

_FIXED_SECONDS = {"WEEKLY": 604800, "DAILY": 86400, "HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}
_COARSENESS = {"YEARLY": 0, "MONTHLY": 1, "WEEKLY": 2, "DAILY": 3, "HOURLY": 4, "MINUTELY": 5, "SECONDLY": 6}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_PARTS = ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY")
_PLAIN_KEYS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST"})
_MARGIN = dt.timedelta(days=2)  # covers any UTC offset (-12..+14) when bounding floating times


class _CapReached(Exception):
    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at)
        self.at = at


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


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One RRULE as the bounding logic sees it."""

    text: str  # as the library hands it to dateutil, to pair the two views of one rule
    recur: dict[str, list[Any]]
    freq: str
    interval: int
    count: int | None
    per_period: int  # upper bound of occurrences one period of FREQ can produce
    one_per_period: bool  # exactly one occurrence per period, so COUNT maps to periods


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
    rules: list[RuleInfo]
    kind: str  # "aware" | "floating" | "date"
    start0: dt.datetime | None  # master DTSTART as naive wall time of its own zone
    duration: dt.timedelta
    lead: dt.timedelta  # how far before a window an occurrence may start and still reach it
    lo: dt.datetime
    hi: dt.datetime | None  # None: the rule never ends
    last_start: Time | None  # last rule occurrence start when known
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
    """A short, log-safe reason: no component dumps, one line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def is_date(value: Time) -> bool:
    return not isinstance(value, dt.datetime)


def bound(value: Time, upper: bool) -> dt.datetime:
    """A UTC instant certainly before (or after) `value` whatever zone floats it."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    naive = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    return naive.replace(tzinfo=UTC) + (_MARGIN if upper else -_MARGIN)


# --- compiling ---------------------------------------------------------------------------


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
            if len(components) == 1 and not any(
                key in components[0] for key in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")
            ):
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


def _kind(value: Time) -> str:
    if not isinstance(value, dt.datetime):
        return "date"
    return "floating" if value.tzinfo is None else "aware"


def _wall(value: Time) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime(value.year, value.month, value.day)


def _compile_series(uid: str, components: Sequence[icalendar.Component]) -> CompiledSeries:
    adapters = [_Adapter(c, event_info(c)) for c in components]
    series = _CachedSeries(adapters)
    master: _Adapter | None = series.recurrence.core if series.recurrence.has_core else None
    mods: list[_Adapter] = list(series.modifications)
    rules: list[RuleInfo] = []
    if master is not None:
        rules = [_rule_info(r, _wall(master.start)) for r in _rrules(master.component)]
        if rules and not all(_feasible(r, _wall(master.start)) for r in rules):
            master, rules = _without_rrule(master), []
            series = _CachedSeries([master, *mods])
    first = master if master is not None else mods[0]
    durations = [a.duration for a in adapters]
    if master is not None:
        durations.extend(series.recurrence.replace_ends.values())
    moves = [abs(a.move_recurrences_by) for a in mods] or [dt.timedelta(0)]
    duration = master.duration if master is not None else dt.timedelta(0)
    lead = max(durations) + max(moves) + dt.timedelta(days=1)
    compiled = CompiledSeries(
        uid=uid,
        series=series,
        master=master,
        modifications=mods,
        rules=rules,
        kind=_kind(first.start),
        start0=_wall(master.start) if master is not None else None,
        duration=duration,
        lead=lead,
        lo=dt.datetime.max.replace(tzinfo=UTC),
        hi=None,
        last_start=None,
    )
    if not _scan_rules(compiled):
        assert master is not None
        master = _without_rrule(master)
        compiled.series, compiled.master, compiled.rules = _CachedSeries([master, *mods]), master, []
        compiled.checkpoints, compiled.last_start = [], None
    _set_extent(compiled, max(durations), max(moves))
    return compiled


def _rrules(component: icalendar.Component) -> list[vRecur]:
    value = component.get("RRULE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _rule_info(recur: vRecur, start0: dt.datetime) -> RuleInfo:
    parts = {str(k).upper(): list(v) for k, v in recur.items()}
    freq = str(parts["FREQ"][0]).upper()
    if freq not in _COARSENESS:
        raise ValueError(f"unknown FREQ {freq}")
    interval = max(int(parts.get("INTERVAL", [1])[0]), 1)
    count = int(parts["COUNT"][0]) if "COUNT" in parts else None
    if count is not None and count <= 0:
        count = None  # the library drops non-positive COUNTs, so do we
    coarse = _COARSENESS[freq]
    days = 1
    if any(p in parts for p in _DAY_PARTS):
        days = {0: 366, 1: 31, 2: 7}.get(coarse, 1)
    elif freq == "YEARLY":
        days = len(parts.get("BYMONTH", [])) or 1
    per_period = days
    for part, level in (("BYHOUR", 4), ("BYMINUTE", 5), ("BYSECOND", 6)):
        if coarse < level:
            per_period *= len(parts.get(part, [])) or 1
    if "BYSETPOS" in parts:
        per_period = min(per_period, len(parts["BYSETPOS"]))
    plain = set(parts) <= _PLAIN_KEYS
    safe_day = (
        freq in _FIXED_SECONDS
        or (freq == "MONTHLY" and start0.day <= 28)
        or (freq == "YEARLY" and (start0.month, start0.day) != (2, 29))
    )
    text = NEGATIVE_RRULE_COUNT_REGEX.sub("", recur.to_ical().decode())
    return RuleInfo(text, parts, freq, interval, count, max(per_period, 1), plain and safe_day)


def _explicit(rule: RuleInfo, start0: dt.datetime) -> dict[str, list[Any]]:
    """The rule with dateutil's DTSTART-derived day defaults written out.

    Needed before DTSTART moves: otherwise a MONTHLY rule started on the 31st would be
    rebased onto "every 1st", because dateutil fills BYMONTHDAY from DTSTART.
    """
    parts = {k: list(v) for k, v in rule.recur.items()}
    if not any(p in parts for p in (*_DAY_PARTS, "BYEASTER")):
        if rule.freq == "YEARLY":
            parts.setdefault("BYMONTH", [start0.month])
            parts["BYMONTHDAY"] = [start0.day]
        elif rule.freq == "MONTHLY":
            parts["BYMONTHDAY"] = [start0.day]
        elif rule.freq == "WEEKLY":
            parts["BYDAY"] = [_WEEKDAYS[start0.weekday()]]
    return parts


def _feasible(rule: RuleInfo, start0: dt.datetime) -> bool:
    """Can the rule's day/position filters ever match? Bounded: at most 400 years of probe."""
    parts = _explicit(rule, start0)
    if rule.freq not in ("YEARLY", "MONTHLY") and "BYSETPOS" in parts:
        per_day = 1
        for part, level in (("BYHOUR", 4), ("BYMINUTE", 5), ("BYSECOND", 6)):
            if _COARSENESS[rule.freq] < level:
                per_day *= len(parts.get(part, [])) or 1
        per_period = per_day * (len(parts.get("BYDAY", [])) or 1 if rule.freq == "WEEKLY" else 1)
        if all(abs(int(p)) > per_period for p in parts["BYSETPOS"]):
            return False
    if rule.freq in ("YEARLY", "MONTHLY"):
        keep = ("BYMONTH", *_DAY_PARTS, "BYSETPOS", "BYHOUR", "BYMINUTE", "BYSECOND", "WKST")
        probe = {k: v for k, v in parts.items() if k in keep}
        probe["FREQ"] = [rule.freq]
    else:
        probe = {k: v for k, v in parts.items() if k in ("BYMONTH", *_DAY_PARTS, "WKST")}
        if not any(p in probe for p in ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")):
            return True  # weekdays and months alone always meet somewhere
        if "BYDAY" in probe:  # ordinal weekdays mean nothing below MONTHLY
            probe["BYDAY"] = [str(d)[-2:] for d in probe["BYDAY"]]
        probe["FREQ"] = ["YEARLY"]
    text = vRecur(probe).to_ical().decode()
    return next(iter(dateutil_rrulestr(text, dtstart=dt.datetime(9599, 1, 1), cache=False)), None) is not None


def _without_rrule(master: _Adapter) -> _Adapter:
    component = master.component.copy()
    del component["RRULE"]
    return _Adapter(component, master.info)


def _scan_rules(cs: CompiledSeries) -> bool:
    """Learn where each rule ends, and checkpoints for COUNT rules that need them.

    Also surfaces rules dateutil refuses (ValueError at the first step) at compile time,
    so a bad series is skipped once instead of failing every query. Returns False when
    a rule yields nothing at all (its filters never meet its INTERVAL lattice).
    """
    if cs.master is None or cs.start0 is None:
        return True
    by_text = {r.text: r for r in cs.rules}
    lasts: list[Time | None] = []
    for rule in cs.series.recurrence.rrules[1:]:
        info = by_text.get(rule.string) or cs.rules[0]
        fresh = rule.replace(cache=False)
        if info.count is None or info.one_per_period:
            if next(iter(fresh), None) is None:
                return False
            last = rule.until if info.count is None else _lattice(info, cs.start0, info.count - 1)
            lasts.append(last)
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
    if lasts and all(v is not None for v in lasts):
        cs.last_start = max((v for v in lasts if v is not None), key=lambda v: bound(v, True))
    return True


def _set_extent(cs: CompiledSeries, longest: dt.timedelta, move: dt.timedelta) -> None:
    starts: list[Time] = []
    ends: list[Time] = []
    for adapter in [*([cs.master] if cs.master else []), *cs.modifications]:
        starts.append(adapter.start)
        ends.append(adapter.end)
        starts.extend(adapter.recurrence_ids[:1])
    if cs.master is not None:
        rdates = list(cs.series.recurrence.rdates)
        starts.extend(rdates)
        ends.extend(rdates)
    cs.lo = min(bound(v, False) for v in starts) - move
    unbounded = bool(cs.rules) and cs.last_start is None
    if cs.last_start is not None:
        ends.append(cs.last_start)
    cs.hi = None if unbounded else max(bound(v, True) for v in ends) + longest + move


# --- periods and rebasing -------------------------------------------------------------------


def _lattice(rule: RuleInfo, start0: dt.datetime, k: int) -> dt.datetime:
    """The start of the k-th period of the rule, as naive wall time."""
    if rule.freq in _FIXED_SECONDS:
        return start0 + dt.timedelta(seconds=_FIXED_SECONDS[rule.freq] * rule.interval * k)
    if rule.freq == "MONTHLY":
        month = start0.month - 1 + k * rule.interval
        return start0.replace(year=start0.year + month // 12, month=month % 12 + 1, day=1)
    return start0.replace(year=start0.year + k * rule.interval, month=1, day=1)


def _periods(rule: RuleInfo, a: dt.datetime, b: dt.datetime) -> int:
    """Whole periods of the rule from a to b (naive wall times), rounded down."""
    if rule.freq in _FIXED_SECONDS:
        return int((b - a).total_seconds() // (_FIXED_SECONDS[rule.freq] * rule.interval))
    if rule.freq == "MONTHLY":
        return ((b.year - a.year) * 12 + b.month - a.month) // rule.interval
    return (b.year - a.year) // rule.interval


def _steps(rule: RuleInfo, a: dt.datetime, b: dt.datetime, counted: bool = True) -> int:
    """Upper bound of occurrences dateutil yields walking from a to b (COUNT aside if not `counted`)."""
    steps = (max(_periods(rule, a, b), 0) + 1) * rule.per_period
    return min(steps, rule.count) if counted and rule.count is not None else steps


def _rebased(cs: CompiledSeries, start: dt.datetime, count: int | None) -> Any:
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
    parts = _explicit(rule, cs.start0)
    parts.pop("COUNT", None)
    if count is not None:
        parts["COUNT"] = [count]
    component["RRULE"] = vRecur(parts)
    cacheable = rule.freq in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY") and rule.per_period <= 64
    kind = _CachedSeries if cacheable else _OneOffSeries
    return kind([_Adapter(component, cs.master.info), *cs.modifications]), cacheable


def _choose_series(cs: CompiledSeries, first: dt.datetime, last: dt.datetime) -> Any:
    """The series object to walk for a window given as naive wall times of the series' zone.

    Returns None when no bounded way exists (reported as "too dense"), which only
    multi-RRULE or >100,000-COUNT filtered rules far from their DTSTART can reach.
    """
    if not cs.rules or cs.start0 is None:
        return cs.series
    steps = sum(_steps(r, cs.start0, last) for r in cs.rules)
    if steps <= DIRECT_LIMIT:
        return cs.series
    if len(cs.rules) > 1:
        before = sum(_steps(r, cs.start0, first) for r in cs.rules)
        return _OneOffSeries([cs.master, *cs.modifications]) if before <= MAX_PREWINDOW else None
    rule = cs.rules[0]
    period = dt.timedelta(seconds=_FIXED_SECONDS.get(rule.freq, 86400 * 366) * rule.interval)
    target = first - cs.lead - period
    if target <= cs.start0:
        return _OneOffSeries([cs.master, *cs.modifications])
    snap = max(1, DIRECT_LIMIT // (4 * rule.per_period))
    k = max(_periods(rule, cs.start0, target) - 1, 0) // snap * snap
    count: int | None
    if rule.count is None or rule.count > _steps(rule, cs.start0, last, counted=False):
        start, count = _lattice(rule, cs.start0, k), None  # COUNT cannot run out before the window ends
    elif rule.one_per_period:
        start, count = _lattice(rule, cs.start0, k), rule.count - k
        if count <= 0:  # every rule occurrence lies before the window
            return _OneOffSeries([_without_rrule(cs.master), *cs.modifications])
    else:
        usable = [cp for cp in cs.checkpoints if cp[0] <= target]
        if not usable:
            return _OneOffSeries([cs.master, *cs.modifications])
        start, done = usable[-1]
        count = rule.count - done
        if not cs.scanned_all and _steps(rule, start, first) > MAX_PREWINDOW:
            return None
    key = (start, count)
    if cs.rebased is not None and cs.rebased[0] == key:
        return cs.rebased[1]
    series, cacheable = _rebased(cs, start, count)
    if cacheable:
        cs.rebased = (key, series)
    return series


# --- expanding ------------------------------------------------------------------------------


class TooDense(Exception):
    """No bounded expansion exists for this series and window."""


def expand(
    cs: CompiledSeries, window: tuple[dt.datetime, dt.datetime], tz: dt.tzinfo
) -> Iterator[Raw]:
    """Occurrences of one series that may touch the UTC window, in the event's own terms.

    Floating and all-day series are queried in the configured zone's wall time, widened
    by a few hours so a DST shift at the window's edge loses nothing; the caller clips.
    """
    ws, we = window
    if cs.kind == "aware":
        span: tuple[Time, Time] = (ws, we)
        zone = cs.master.start.tzinfo if cs.master is not None else UTC
        first = ws.astimezone(zone).replace(tzinfo=None)
        last = we.astimezone(zone).replace(tzinfo=None)
    else:
        widen = dt.timedelta(hours=3)
        first = ws.astimezone(tz).replace(tzinfo=None) - widen
        last = we.astimezone(tz).replace(tzinfo=None) + widen
        span = (first, last)
    series = _choose_series(cs, first, last)
    if series is None:
        raise TooDense("recurrence too dense to expand in this window")
    seen: set[int] = set()
    try:
        for occurrence in series.between(*span):
            seen.add(id(occurrence.adapter))
            yield Raw(occurrence.adapter.info, occurrence.start, occurrence.end, is_date(occurrence.start))
    except _CapReached as cap:
        assert cs.master is not None
        end: Time = last if cs.kind != "aware" else we
        if cs.last_start is not None:
            known = convert_to_datetime(cs.last_start, cap.at.tzinfo) + cs.duration
            end = min(known, convert_to_datetime(end, cap.at.tzinfo))
        if cs.duration > dt.timedelta(0):
            yield Raw(cs.master.info, cap.at, end, cs.kind == "date", approximate=True)
        for mod in cs.modifications:
            if id(mod) not in seen and mod.is_in_span(*span):
                yield Raw(mod.info, mod.start, mod.end, is_date(mod.start))
