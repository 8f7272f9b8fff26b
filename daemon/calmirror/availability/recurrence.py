"""Compiling VEVENTs into bounded series on top of recurring-ical-events.

recurring-ical-events gets the semantics right (RECURRENCE-ID overrides, EXDATE in any
TZID form, RDATE periods, RANGE=THISANDFUTURE, zones defined by their own VTIMEZONE), but
underneath it dateutil walks every period from DTSTART and the library materialises every
occurrence of a window. Here each calendar is compiled once so that queries stay bounded:

* VEVENTs are grouped by UID; lone events become `Single`s handled without the library;
* rules that can never match are reduced to their DTSTART and filtered sub-daily rules
  are rewritten as DAILY ones (`availability.rrule_bounds`);
* each series learns its UTC extent, so a query skips a finished series untouched, and
  COUNT rules with filters are enumerated once for checkpoints `availability.expansion` can
  fast-forward to;
* the rule walker is lazy and capped (`availability.library_series`): at most
  `MAX_OCCURRENCES` occurrences of a rule per query. The rest of the series is then
  returned as one busy stretch marked approximate: a rule that dense blocks the time in
  practice, and erring towards busy cannot double-book anyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import icalendar
import x_wr_timezone
from icalendar.prop import vRecur
from recurring_ical_events import EventAdapter

from calmirror.availability import rrule_bounds as rb
from calmirror.availability import zones
from calmirror.availability.compiled import CompiledCalendar, CompiledSeries, Single
from calmirror.availability.durations import DST_SLACK, length_of, rfc_end
from calmirror.availability.instants import Time, bound, wall
from calmirror.availability.lenient import drop_broken
from calmirror.availability.library_series import Adapter, CachedSeries, recurrence_ids
from calmirror.availability.rules import event_info
from calmirror.availability.skip import backward_as_setpos, is_backward

COUNT_SCAN_LIMIT = 50_000  # COUNT rules with filters are enumerated once, up to here
CHECKPOINT_EVERY = 250  # occurrences between fast-forward points of a scanned COUNT rule


def reason(exc: BaseException) -> str:
    """A short, log-safe reason: one line, no component dump."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def _kind(value: Time) -> str:
    if not isinstance(value, dt.datetime):
        return "date"
    return "floating" if value.tzinfo is None else "aware"


# --- compiling ---------------------------------------------------------------------------------


def compile_calendar(calendar: icalendar.Calendar) -> CompiledCalendar:
    """Group VEVENTs by UID and prepare each group; a bad group is skipped, not fatal."""
    if str(calendar.get("CALSCALE", "GREGORIAN")).upper() != "GREGORIAN":
        return CompiledCalendar((), (), (("", "non-Gregorian CALSCALE"),))
    skipped: list[tuple[str, str]] = zones.localise(calendar)
    try:
        calendar = x_wr_timezone.to_standard(calendar)
    except Exception as exc:  # a bad X-WR-TIMEZONE must not hide the events themselves
        skipped.append(("", f"X-WR-TIMEZONE ignored: {reason(exc)}"))
    groups: dict[str, list[icalendar.Component]] = {}
    for n, component in enumerate(calendar.walk("VEVENT")):
        drop_broken(component)
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
    end = rfc_end(length_of(component), adapter.duration, start, end)  # exact hours across DST
    info = event_info(component)
    return Single(uid, info, start, end, bound(start, False) - info.travel, bound(end, True))


def _rrules(component: icalendar.Component) -> list[Any]:
    value = component.get("RRULE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _simplified(master: Adapter) -> tuple[Adapter, list[rb.RuleInfo]]:
    """The master with infeasible rules dropped and filtered sub-daily rules made DAILY.

    A rule in another calendar scale (RFC 7529: Apple writes `RSCALE=CHINESE;FREQ=YEARLY` for
    a lunar birthday) is dropped too: no library here walks Chinese or Hebrew months, and
    DTSTART, RDATEs and overrides still count (the mirror's copy says later occurrences are
    not known, `compat_scales`). RSCALE=GREGORIAN is a plain rule; dateutil does SKIP=OMIT,
    SKIP=BACKWARD is written as a plain rule where one can say it (`availability.skip`), and an
    occurrence SKIP=FORWARD (or BACKWARD elsewhere) would move is left out."""
    start0 = wall(master.start)
    kept: list[dict[str, list[Any]]] = []
    changed = False
    for recur in _rrules(master.component):
        parts = rb.parts_of(recur)
        if "RSCALE" in parts or "SKIP" in parts:
            changed = True
            if str(parts.get("RSCALE", ["GREGORIAN"])[0]).strip().upper() != "GREGORIAN":
                continue  # another calendar scale (RFC 7529): DTSTART, RDATEs and overrides count
            backward = is_backward(parts)
            parts = {k: v for k, v in parts.items() if k not in ("RSCALE", "SKIP")}
            if backward:  # a month without the day takes its last day (`availability.skip`)
                parts = backward_as_setpos(parts, start0) or parts
        if not rb.feasible(parts, start0):
            changed = True
            continue
        until = _until_of_timed_rule(parts, master.start)
        if until is not None:
            parts = {**parts, "UNTIL": [until]}
            changed = True
        daily = rb.daily_equivalent(parts, start0)
        changed = changed or daily is not None
        parts = daily or parts
        counted = rb.start_counted(parts, start0)
        changed = changed or counted is not parts
        if counted is None:  # COUNT=1 and DTSTART is not the rule's: DTSTART alone
            continue
        parts = counted
        if rb.count_never_ends(parts, start0):  # "forever" written as COUNT=1000000000
            parts = {k: v for k, v in parts.items() if k != "COUNT"}
            changed = True
        kept.append(parts)
    if changed:
        component = master.component.copy()
        component.pop("RRULE", None)
        for parts in kept:
            component.add("RRULE", vRecur(parts))
        master = Adapter(component, master.info)
    return master, [rb.rule_info(parts, start0) for parts in kept]


def _overrides_kept(master: Adapter, mods: Sequence[Adapter]) -> Adapter:
    """The master without the EXDATE values that name an occurrence an override (a
    RECURRENCE-ID component of the same UID) still describes.

    The shape is contradictory (the occurrence is removed, and moved or changed), and
    readers disagree: recurring-ical-events drops the override with the occurrence, Radicale
    (and so a CalDAV client's time-range query on the mirror) shows the override. The
    override is an event of its own, with its own time and status, that someone wrote after
    the rule; erring towards busy never double-books anyone, so it counts, as any override
    does. The compatible copy drops the same values (`compat_series.keep_overrides`), so
    clients that expand with the library see it too."""
    if not mods:
        return master
    named = {rid for mod in mods for rid in mod.recurrence_ids}
    days = {getattr(mod.component.get("RECURRENCE-ID"), "dt", None) for mod in mods} - {None}
    days = {day for day in days if not isinstance(day, dt.datetime)}
    component = master.component.copy()
    found: Any = component.get("EXDATE")
    kept: list[list[Time]] = []
    changed = False
    for line in found if isinstance(found, list) else [found]:
        values = [v.dt for v in line.dts]
        left = [v for v in values if not (named & set(recurrence_ids(v)) or v in days)]
        changed = changed or len(left) != len(values)
        if left:
            kept.append(left)
    if not changed:
        return master
    component.pop("EXDATE", None)
    for values in kept:
        component.add("EXDATE", values)
    return Adapter(component, master.info)


def _until_of_timed_rule(parts: dict[str, list[Any]], start: Time) -> dt.datetime | None:
    """A DATE UNTIL on a rule of timed occurrences, read as the end of that day in the
    event's own zone (floating: wall time); None when the UNTIL is not such a date.

    RFC 5545 calls the shape invalid (UNTIL must take DTSTART's value type), but iCloud holds
    what clients write, and readers disagree: dateutil and recurring-ical-events take the
    date as its midnight and drop that last day, vobject (Radicale) takes it at DTSTART's time
    of day. A writer of a date meant "up to and including that day", and erring towards busy
    never double-books anyone, so the whole last day counts. The compatible copy writes the
    same instant out (`compat_series.until_as_end_of_day`), so a client of the mirror sees it too."""
    values = parts.get("UNTIL") or []
    if not isinstance(start, dt.datetime) or len(values) != 1:
        return None
    value = values[0]
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        return None
    end = dt.datetime.combine(value, dt.time(23, 59, 59), tzinfo=start.tzinfo)
    return end if start.tzinfo is None else end.astimezone(dt.UTC)  # (RFC 5545: UNTIL in UTC)


def _compile_series(uid: str, components: Sequence[icalendar.Component]) -> CompiledSeries:
    adapters = [Adapter(c, event_info(c)) for c in components]
    masters = [a for a in adapters if not a.is_modification()]
    # The library keeps the master with the highest SEQUENCE (the first of equals); we pick
    # it first so that a simplified master costs one Series construction, not two.
    master = max(masters, key=lambda a: a.sequence) if masters else None
    if master is not None and "EXDATE" in master.component:
        master = _overrides_kept(master, [a for a in adapters if a.is_modification()])
    rules: list[rb.RuleInfo] = []
    if master is not None and _rrules(master.component):
        master, rules = _simplified(master)
    series = CachedSeries([*([master] if master is not None else []), *(a for a in adapters if a.is_modification())])
    mods: list[Adapter] = list(series.modifications)
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
        start0=wall(master.start) if master is not None else None,
        duration=master.duration if master is not None else dt.timedelta(0),
        lead=max(durations) + move + DST_SLACK,
        travel=max(a.info.travel for a in (master, *mods) if a is not None),
    )
    if not _scan_rules(cs):  # the filters never meet the INTERVAL lattice: DTSTART only
        assert master is not None
        bare = master.component.copy()
        del bare["RRULE"]
        cs.master = Adapter(bare, master.info)
        cs.series, cs.rules, cs.checkpoints, cs.last_start = CachedSeries([cs.master, *mods]), [], [], None
    _set_extent(cs, max(durations) + DST_SLACK, move)
    return cs


def _scan_rules(cs: CompiledSeries) -> bool:
    """Learn where each rule ends, and checkpoints for COUNT rules that need them.

    Also surfaces rules dateutil refuses (ValueError on the first step) at compile time,
    so a bad series is skipped once instead of failing every query. Returns False when a
    rule yields nothing at all.
    """
    if cs.master is None or cs.start0 is None or not cs.rules:
        return True
    by_text = {rb.rule_text(r.recur): r for r in cs.rules} if len(cs.rules) > 1 else {}
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
                except (OverflowError, ValueError):  # COUNT=1000000000 outlives the year 9999
                    lasts.append(None)
            continue
        n, last, complete = 0, None, True
        for start in fresh:
            if n >= COUNT_SCAN_LIMIT:
                complete = False
                break
            if n % CHECKPOINT_EVERY == 0 and len(cs.rules) == 1:
                cs.checkpoints.append((wall(start), n))
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
    cs.lo = min(bound(v, False) for v in starts) - move - cs.travel
    if cs.rules and cs.last_start is None:
        cs.hi = None
        return
    if cs.last_start is not None:
        ends.append(cs.last_start)
    try:
        cs.hi = max(bound(v, True) for v in ends) + longest + move
    except OverflowError:  # a rule running to 9999-12-31 (UNTIL=99991231T235959Z): it never ends
        cs.hi = None
