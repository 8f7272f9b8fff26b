"""Arithmetic on RRULEs that keeps dateutil's work proportional to the window.

dateutil walks a rule period by period from DTSTART. That is fine for a weekly meeting,
but its cost is set by the number of *periods* walked, not occurrences returned:
FREQ=SECONDLY;BYHOUR=9 inspects 86,400 periods a day to return 3,600, and a rule whose
filters never match walks to the year 9999. These helpers let `availability.recurrence`
decide, before asking dateutil anything, how far it would walk and how to avoid it:

* `rule_info` estimates occurrences per period (an upper bound) so walks can be budgeted;
* `daily_equivalent` rewrites filtered sub-daily rules as DAILY rules with explicit
  times of day, which dateutil expands per day instead of per second;
* `feasible` proves in at most one 400-year Gregorian cycle whether a rule's filters can
  ever match, including filters that clash with the INTERVAL lattice
  (FREQ=DAILY;INTERVAL=7;BYDAY=FR started on a Thursday);
* `lattice`/`periods` move DTSTART forward by whole periods, with `explicit` writing out
  the BY* defaults dateutil would otherwise take from the old DTSTART.

All functions are pure and work on naive wall-clock datetimes, as dateutil does.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from dateutil.rrule import rrulestr as dateutil_rrulestr
from icalendar.prop import vRecur
from recurring_ical_events.constants import NEGATIVE_RRULE_COUNT_REGEX

FIXED_SECONDS = {"WEEKLY": 604800, "DAILY": 86400, "HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}
COARSENESS = {"YEARLY": 0, "MONTHLY": 1, "WEEKLY": 2, "DAILY": 3, "HOURLY": 4, "MINUTELY": 5, "SECONDLY": 6}
GREGORIAN_CYCLE_DAYS = 146097  # 400 years; weekdays and leap years repeat exactly
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_PARTS = ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY")
_PLAIN_KEYS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST"})
_TIME_PARTS = (("BYHOUR", 4, 24), ("BYMINUTE", 5, 60), ("BYSECOND", 6, 60))
_PROBE_START = dt.datetime(9599, 1, 1)  # the last full cycle dateutil can walk before 9999


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One RRULE as the bounding logic sees it."""

    recur: dict[str, list[Any]]
    freq: str
    interval: int
    count: int | None
    per_period: int  # upper bound of occurrences one period of FREQ can produce
    one_per_period: bool  # exactly one occurrence per period, so COUNT maps to periods
    filtered_subdaily: bool  # dateutil inspects every period here; budget periods, not hits


def rule_text(recur: dict[str, list[Any]]) -> str:
    """The rule as recurring-ical-events hands it to dateutil, to pair the two views of it."""
    return str(NEGATIVE_RRULE_COUNT_REGEX.sub("", vRecur(recur).to_ical().decode()))


def parts_of(recur: Any) -> dict[str, list[Any]]:
    return {str(k).upper(): list(v) for k, v in recur.items()}


def rule_info(parts: dict[str, list[Any]], start0: dt.datetime) -> RuleInfo:
    freq = str(parts["FREQ"][0]).upper()
    if freq not in COARSENESS:
        raise ValueError(f"unknown FREQ {freq}")
    interval = max(int(parts.get("INTERVAL", [1])[0]), 1)
    count = int(parts["COUNT"][0]) if "COUNT" in parts else None
    if count is not None and count <= 0:
        count = None  # recurring-ical-events drops non-positive COUNTs; so do we
    coarse = COARSENESS[freq]
    days = 1
    if any(p in parts for p in _DAY_PARTS):
        days = {0: 366, 1: 31, 2: 7}.get(coarse, 1)
    elif freq == "YEARLY":
        days = len(parts.get("BYMONTH", [])) or 1
    per_period = days
    for part, level, _size in _TIME_PARTS:
        if coarse < level:
            per_period *= len(parts.get(part, [])) or 1
    if "BYSETPOS" in parts:
        per_period = min(per_period, len(parts["BYSETPOS"]))
    plain = set(parts) <= _PLAIN_KEYS
    safe_day = (
        freq in FIXED_SECONDS
        or (freq == "MONTHLY" and start0.day <= 28)
        or (freq == "YEARLY" and (start0.month, start0.day) != (2, 29))
    )
    return RuleInfo(
        recur=parts,
        freq=freq,
        interval=interval,
        count=count,
        per_period=max(per_period, 1),
        one_per_period=plain and safe_day,
        filtered_subdaily=coarse > 3 and not plain,
    )


def explicit(parts: dict[str, list[Any]], start0: dt.datetime) -> dict[str, list[Any]]:
    """The rule with dateutil's DTSTART-derived day defaults written out.

    Needed before DTSTART moves: otherwise a MONTHLY rule started on the 31st would be
    rebased onto "every 1st", because dateutil fills BYMONTHDAY from DTSTART.
    """
    out = {k: list(v) for k, v in parts.items()}
    freq = str(out["FREQ"][0]).upper()
    if not any(p in out for p in (*_DAY_PARTS, "BYEASTER")):
        if freq == "YEARLY":
            out.setdefault("BYMONTH", [start0.month])
            out["BYMONTHDAY"] = [start0.day]
        elif freq == "MONTHLY":
            out["BYMONTHDAY"] = [start0.day]
        elif freq == "WEEKLY":
            out["BYDAY"] = [_WEEKDAYS[start0.weekday()]]
    return out


def _lattice_times(step: int, start0: dt.datetime) -> tuple[range, range, range] | None:
    """Hours, minutes and seconds an INTERVAL lattice of `step` seconds reaches each day.

    Only lattices that are the same every day and a product of the three fields qualify:
    steps dividing a minute, whole minutes dividing an hour, or whole hours dividing a day.
    """
    h, m, s = start0.hour, start0.minute, start0.second
    if step < 60 and 60 % step == 0:
        return range(24), range(60), range(s % step, 60, step)
    if step % 60 == 0 and step < 3600 and 3600 % step == 0:
        return range(24), range(m % (step // 60), 60, step // 60), range(s, s + 1)
    if step % 3600 == 0 and 86400 % step == 0:
        return range(h % (step // 3600), 24, step // 3600), range(m, m + 1), range(s, s + 1)
    return None


def daily_equivalent(parts: dict[str, list[Any]], start0: dt.datetime) -> dict[str, list[Any]] | None:
    """A DAILY rule with the same occurrences as a filtered HOURLY/MINUTELY/SECONDLY rule.

    Possible when the INTERVAL lattice repeats every day as a product of hours x minutes
    x seconds; BYSETPOS (whose sets would change from per-second to per-day) rules it
    out. COUNT and UNTIL keep their meaning because the sequence of occurrences is the same.
    """
    freq = str(parts["FREQ"][0]).upper()
    if freq not in ("HOURLY", "MINUTELY", "SECONDLY") or "BYSETPOS" in parts or set(parts) <= _PLAIN_KEYS:
        return None
    reach = _lattice_times(FIXED_SECONDS[freq] * max(int(parts.get("INTERVAL", [1])[0]), 1), start0)
    if reach is None:
        return None
    level = COARSENESS[freq]
    chosen: list[list[int]] = []
    for (name, part_level, _size), reached, own in zip(
        _TIME_PARTS, reach, (start0.hour, start0.minute, start0.second), strict=True
    ):
        wanted = sorted({int(v) for v in parts.get(name, [])})
        # At or above FREQ a BY* list filters the lattice; below it, it expands (default:
        # DTSTART's own value).
        values = [v for v in reached if not wanted or v in wanted] if part_level <= level else wanted or [own]
        if not values:
            return None
        chosen.append(values)
    out = {k: v for k, v in parts.items() if k not in ("FREQ", "INTERVAL", "BYHOUR", "BYMINUTE", "BYSECOND")}
    out.update(FREQ=["DAILY"], BYHOUR=chosen[0], BYMINUTE=chosen[1], BYSECOND=chosen[2])
    return out


def _first(parts: dict[str, list[Any]], start: dt.datetime) -> dt.datetime | None:
    return next(iter(dateutil_rrulestr(vRecur(parts).to_ical().decode(), dtstart=start, cache=False)), None)


def _plainly_feasible(full: dict[str, list[Any]]) -> bool:
    """Monthly/yearly rules every month can satisfy, so the probe can be spared.

    Days 1-28 (or -1..-28) and the 1st-4th/last-4th weekday exist in every month; only
    their combination (BYDAY with BYMONTHDAY), year-level parts and BYSETPOS need proof.
    """
    if any(p in full for p in ("BYYEARDAY", "BYWEEKNO", "BYSETPOS", "BYEASTER")):
        return False
    if "BYDAY" in full and "BYMONTHDAY" in full:
        return False
    ordinals = [str(d)[:-2] for d in full.get("BYDAY", [])]
    return all(abs(int(v)) <= 28 for v in full.get("BYMONTHDAY", [])) and all(
        not n or n in ("+", "-") or abs(int(n)) <= 4 for n in ordinals
    )


def feasible(parts: dict[str, list[Any]], start0: dt.datetime) -> bool:
    """Can the rule ever produce an occurrence? Costs at most one 400-year probe."""
    full = explicit(parts, start0)
    freq = str(full["FREQ"][0]).upper()
    level = COARSENESS[freq]
    if level >= 2 and "BYSETPOS" in full:
        per_day = math.prod(len(full.get(p, [])) or 1 for p, lvl, _ in _TIME_PARTS if level < lvl)
        per_period = per_day * ((len(full.get("BYDAY", [])) or 1) if freq == "WEEKLY" else 1)
        if all(abs(int(p)) > per_period for p in full["BYSETPOS"]):
            return False
    days = {k: v for k, v in full.items() if k in ("BYMONTH", *_DAY_PARTS, "WKST")}
    if freq in ("YEARLY", "MONTHLY") and _plainly_feasible(full):
        return True
    if freq in ("YEARLY", "MONTHLY"):
        probe = {k: v for k, v in full.items() if k in (*days, "BYSETPOS", "BYHOUR", "BYMINUTE", "BYSECOND")}
        return _first({**probe, "FREQ": [freq]}, _PROBE_START) is not None
    if "BYDAY" in days:  # ordinal weekdays mean nothing below MONTHLY
        days["BYDAY"] = [str(d)[-2:] for d in days["BYDAY"]]
    limiting = ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO") if freq == "WEEKLY" else (*_DAY_PARTS, "BYMONTH")
    if not any(p in days for p in limiting):
        return True
    if _first({**days, "FREQ": ["YEARLY"]}, _PROBE_START) is None:
        return False
    step = FIXED_SECONDS[freq] * max(int(full.get("INTERVAL", [1])[0]), 1)
    if step % 86400:
        return True  # a lattice finer than a day reaches every day of the cycle
    g = math.gcd(step // 86400, GREGORIAN_CYCLE_DAYS)
    if g == 1 or (freq == "WEEKLY" and g == 7):
        return True
    offset = (start0.date() - _PROBE_START.date()).days % g
    start = _PROBE_START + dt.timedelta(days=offset)
    if freq == "WEEKLY":
        return _first({**days, "FREQ": ["WEEKLY"], "INTERVAL": [g // 7]}, start) is not None
    return _first({**days, "FREQ": ["DAILY"], "INTERVAL": [g]}, start) is not None


def start_counted(parts: dict[str, list[Any]], start0: dt.datetime) -> dict[str, list[Any]] | None:
    """The rule with its COUNT taken as RFC 5545 counts it: None when nothing of it is left.

    DTSTART is always the first occurrence and counts toward COUNT (RFC 5545 3.3.10), also
    when the rule's filters would not produce it (`BYDAY=MO;COUNT=3` from a Tuesday: the
    Tuesday and two Mondays). dateutil and recurring-ical-events add DTSTART on top of COUNT
    rule occurrences (one too many); vobject, and so Radicale, takes one off the COUNT. Here
    too: the rule keeps COUNT - 1, and the library adds DTSTART as it always does."""
    count = parts.get("COUNT")
    if not count or int(count[0]) <= 0 or set(parts) <= _PLAIN_KEYS:
        return parts  # (a plain rule always starts at DTSTART; a non-positive COUNT is dropped)
    walked = {k: v for k, v in parts.items() if k not in ("COUNT", "UNTIL")}
    if _first(daily_equivalent(walked, start0) or walked, start0) == start0:
        return parts
    left = int(count[0]) - 1
    return {**parts, "COUNT": [left]} if left else None


def lattice(rule: RuleInfo, start0: dt.datetime, k: int) -> dt.datetime:
    """The start of the k-th period of the rule, as naive wall time (raises OverflowError)."""
    if rule.freq in FIXED_SECONDS:
        return start0 + dt.timedelta(seconds=FIXED_SECONDS[rule.freq] * rule.interval * k)
    if rule.freq == "MONTHLY":
        month = start0.month - 1 + k * rule.interval
        return start0.replace(year=start0.year + month // 12, month=month % 12 + 1, day=1)
    return start0.replace(year=start0.year + k * rule.interval, month=1, day=1)


def periods(rule: RuleInfo, a: dt.datetime, b: dt.datetime) -> int:
    """Whole periods of the rule from a to b (naive wall times), rounded down."""
    if rule.freq in FIXED_SECONDS:
        return int((b - a).total_seconds() // (FIXED_SECONDS[rule.freq] * rule.interval))
    if rule.freq == "MONTHLY":
        return ((b.year - a.year) * 12 + b.month - a.month) // rule.interval
    return (b.year - a.year) // rule.interval


def period_length(rule: RuleInfo) -> dt.timedelta:
    """One period, rounded up for months and years."""
    return dt.timedelta(seconds=FIXED_SECONDS.get(rule.freq, 86400 * 366) * rule.interval)


_LAST_WALL = dt.datetime(9999, 12, 31, 23, 59, 59)


def count_never_ends(parts: dict[str, list[Any]], start0: dt.datetime) -> bool:
    """True when the rule cannot produce COUNT occurrences before the year 9999 ends.

    Such a COUNT (apps write "forever" as COUNT=1000000000) bounds nothing a calendar can
    reach, and dropping it spares enumerating the rule to find where it would run out.
    `steps` is an upper bound, so a COUNT that might bite is always kept.
    """
    if "COUNT" not in parts:
        return False
    info = rule_info(parts, start0)
    return info.count is not None and steps(info, start0, _LAST_WALL, counted=False) < info.count


def steps(rule: RuleInfo, a: dt.datetime, b: dt.datetime, counted: bool = True) -> int:
    """Upper bound of occurrences dateutil yields walking from a to b (COUNT aside if not `counted`)."""
    total = (max(periods(rule, a, b), 0) + 1) * rule.per_period
    return min(total, rule.count) if counted and rule.count is not None else total
