"""Bounding recurrence rules Radicale would refuse for counting too far.

Radicale refuses an object whose rule it counts past `max_occurrences`, and it counts by
its own estimate: (UNTIL - DTSTART) / one FREQ unit, ignoring INTERVAL and filters, with
the RDATEs added. A rule with a COUNT or UNTIL beyond that (`COUNT=1000000000`, apps'
"forever") is given an UNTIL at its last occurrence before the horizon, and never past the
limit-th occurrence; busy time still counts the exact text in full (`compat`). A rule so
frequent that the limit would come first, and that runs past the horizon, loses its COUNT
or UNTIL instead: the same up to the horizon, and never counted by Radicale (it counts only
bounded rules).
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import suppress
from functools import lru_cache
from itertools import islice

import icalendar
from dateutil import rrule
from icalendar.prop import vRecur

from calmirror.availability import rrule_bounds as rb
from calmirror.availability import zones
from calmirror.ical_lines import Event, Resource, name_of, params_of, value_of

# Radicale's own guess of one occurrence's length per FREQ (radicale.item RRULE_FREQUENCIES_TO_INTERVAL).
_FREQ_SECONDS = {
    "YEARLY": 86400 * 365,
    "MONTHLY": 86400 * 365 / 12,
    "WEEKLY": 86400 * 7,
    "DAILY": 86400,
    "HOURLY": 3600,
    "MINUTELY": 60,
    "SECONDLY": 1,
}


def _freq(parts: list[str]) -> str:
    return next((p.split("=", 1)[1].upper() for p in parts if p.upper().startswith("FREQ=")), "")


def bound_rules(resource: Resource, horizon: dt.date, limit: int) -> bool:
    """Bound every RRULE of `resource` that Radicale would count past `limit` occurrences or
    the horizon; returns whether one was."""
    changed = False
    for event in resource.events:
        for index, line in event.top():
            if name_of(line) != "RRULE":
                continue
            bounded = bounded_rule(resource, event, value_of(line), horizon, limit)
            if bounded is not None and bounded != value_of(line):
                event.lines[index] = "RRULE" + params_of(line) + ":" + bounded
                changed = True
    return changed


def over_limit(resource: Resource, limit: int) -> bool:
    """Whether Radicale would refuse a rule of `resource` for counting past `limit`, by its
    own early checks (COUNT, or (UNTIL - DTSTART) / one FREQ unit): such a rule needs its bound
    whatever else Radicale named first (it stops at the first problem, RDATE periods say)."""
    for event in resource.events:
        start_line = event.get("DTSTART")
        room = limit - sum(value_of(line).count(",") + 1 for line in event.all("RDATE"))
        for _, line in event.top():
            if name_of(line) != "RRULE" or start_line is None:
                continue
            parts = [p for p in value_of(line).split(";") if p]
            ends = {k.upper(): v for k, _, v in (p.partition("=") for p in parts) if k.upper() in ("COUNT", "UNTIL")}
            with suppress(ValueError, OverflowError):
                if "COUNT" in ends and int(ends["COUNT"]) > room:
                    return True
                if "UNTIL" in ends:
                    start, _, _ = start_of(resource, start_line)
                    until = _naive(ends["UNTIL"])
                    if (until - start).total_seconds() / _FREQ_SECONDS.get(_freq(parts), 1.0) > room - 1:
                        return True
    return False


def _naive(value: str) -> dt.datetime:
    """An UNTIL as a naive date-time (its zone is at most a day off, which the check allows)."""
    value = value.strip().rstrip("Zz").upper()
    if "T" in value:
        return dt.datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    return dt.datetime.strptime(value[:8], "%Y%m%d")


def bounded_rule(resource: Resource, event: Event, rule: str, horizon: dt.date, limit: int) -> str | None:
    """The rule with COUNT/UNTIL replaced by an UNTIL at its last occurrence before the
    horizon, at most the limit-th; None when the rule ends well before either.

    A filtered sub-daily rule that needs a bound is first written as the DAILY rule with the
    same occurrences (`FREQ=HOURLY;BYHOUR=9` is every day at 9): Radicale estimates a DAILY
    rule's count by days, not hours, so the copy reaches years further."""
    bounded = _bounded_as_is(resource, event, rule, horizon, limit)
    if bounded is None:
        return None
    daily = _daily(resource, event, rule)
    if daily is None:
        return bounded
    return _bounded_as_is(resource, event, daily, horizon, limit) or daily


def _daily(resource: Resource, event: Event, rule: str) -> str | None:
    """The DAILY rule with the occurrences of a filtered HOURLY/MINUTELY/SECONDLY one, or None."""
    start_line = event.get("DTSTART")
    if start_line is None or _freq(rule.split(";")) not in ("HOURLY", "MINUTELY", "SECONDLY"):
        return None
    try:
        start, _, _ = start_of(resource, start_line)
        daily = rb.daily_equivalent(rb.parts_of(vRecur.from_ical(rule)), start)
        return None if daily is None else str(vRecur(daily).to_ical().decode())
    except (ValueError, TypeError, KeyError):
        return None


def _bounded_as_is(resource: Resource, event: Event, rule: str, horizon: dt.date, limit: int) -> str | None:
    start_line = event.get("DTSTART")
    if start_line is None:
        return None
    parts = [p for p in rule.split(";") if p]
    has_end = any(p.upper().startswith(("COUNT=", "UNTIL=")) for p in parts)
    if not has_end:
        return None  # Radicale does not count open-ended rules
    start, form, tz = start_of(resource, start_line)
    # Radicale also estimates (UNTIL - DTSTART) / one FREQ unit, ignoring INTERVAL and
    # filters, and counts RDATEs with the rule: stay under both, with a day to spare
    # for the zone offset.
    unit = _FREQ_SECONDS.get(_freq(parts), 1.0)
    limit -= 1 + sum(value_of(line).count(",") + 1 for line in event.all("RDATE"))
    stop = dt.datetime.combine(horizon, dt.time())
    # (YEARLY: 10,000 years from DTSTART is past the year 9999, so the horizon comes first)
    with suppress(OverflowError):
        stop = min(stop, start + dt.timedelta(seconds=unit * limit) - dt.timedelta(days=1))
    try:
        walk = rrule.rrulestr(rule, dtstart=start, ignoretz=True, cache=False)
        kept = list(islice(walk.xafter(start - dt.timedelta(seconds=1), inc=True), limit + 1))
    except (ValueError, TypeError, OverflowError):
        return None
    inside = [occurrence for occurrence in kept if occurrence < stop][:limit]
    if len(inside) == len(kept) and len(kept) <= limit:
        return None  # ends before both the horizon and the limit: Radicale refused something else
    plain = [p for p in parts if not p.upper().startswith(("COUNT=", "UNTIL="))]
    far = dt.datetime.combine(horizon, dt.time())
    if stop < far and _runs_past(rule, start, far):
        # The limit comes before the horizon (every 90 minutes: 10,000 of them are two weeks),
        # and the rule runs past the horizon (a COUNT of a billion, an UNTIL in 9999): without
        # its end it is the same rule up to the horizon, which is all a copy promises, and
        # Radicale counts no rule without COUNT or UNTIL, so clients see it in every window.
        return ";".join(plain)
    if not inside:
        return None
    return ";".join([*plain, "UNTIL=" + until_value(inside[-1], form, tz)])


def _runs_past(rule: str, start: dt.datetime, far: dt.datetime) -> bool:
    """Whether the rule surely has occurrences past `far` (by its COUNT against an upper
    bound of the occurrences before `far`, or by its UNTIL), without walking it."""
    try:
        parts = rb.parts_of(vRecur.from_ical(rule))
        if "UNTIL" in parts:
            until = parts["UNTIL"][0]
            until = until if isinstance(until, dt.datetime) else dt.datetime.combine(until, dt.time())
            return until.replace(tzinfo=None) > far + dt.timedelta(days=1)
        info = rb.rule_info(parts, start)
        return info.count is not None and info.count > rb.steps(info, start, far, counted=False)
    except (ValueError, TypeError, KeyError, OverflowError, IndexError):
        return False


def start_of(resource: Resource, line: str) -> tuple[dt.datetime, str, dt.tzinfo | None]:
    """DTSTART as a naive local date-time, its form (date, floating, utc, zoned), its zone."""
    value = value_of(line).strip()
    params = params_of(line).upper()
    if ("VALUE=DATE" in params and "VALUE=DATE-TIME" not in params) or len(value) == 8:
        return dt.datetime.strptime(value[:8], "%Y%m%d"), "date", None
    naive = dt.datetime.strptime(value.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
    if value.upper().endswith("Z"):
        return naive, "utc", dt.UTC
    tzid = re.search(r'TZID=("[^"]*"|[^;:]*)', params_of(line), re.IGNORECASE)
    if not tzid:
        return naive, "floating", None
    tz, _ = zones.zone_for(tzid.group(1).strip('"'), _own_zones(resource))
    return naive, "zoned" if tz else "floating", tz


def _own_zones(resource: Resource) -> dict[str, icalendar.Timezone]:
    return _zones_of(tuple(tuple(block) for block in resource.timezones))


@lru_cache(maxsize=64)
def _zones_of(blocks: tuple[tuple[str, ...], ...]) -> dict[str, icalendar.Timezone]:
    """The object's VTIMEZONEs by TZID, parsed once per set of blocks: `start_of` runs for
    every RECURRENCE-ID and EXDATE value a copy compares (a THISANDFUTURE override spread over
    a daily series: over a thousand), and parsing the blocks each time was nearly all of its
    cost. Read only by the callers."""
    own: dict[str, icalendar.Timezone] = {}
    for block in blocks:
        try:
            wrapped = icalendar.Calendar.from_ical("\r\n".join(["BEGIN:VCALENDAR", *block, "END:VCALENDAR", ""]))
        except Exception:
            continue
        for tz in wrapped.walk("VTIMEZONE"):
            if isinstance(tz, icalendar.Timezone) and "TZID" in tz:
                own[str(tz["TZID"])] = tz
    return own


def until_value(last: dt.datetime, form: str, tz: dt.tzinfo | None) -> str:
    """An occurrence as an UNTIL value in the form RFC 5545 asks for DTSTART's form."""
    if form == "date":
        return last.strftime("%Y%m%d")
    if form == "floating":
        return last.strftime("%Y%m%dT%H%M%S")
    aware = last.replace(tzinfo=tz) if form == "zoned" else last.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
