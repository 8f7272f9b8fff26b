"""A rule too frequent for Radicale's occurrence limit that ends before the horizon, written
out as RDATEs so clients see every occurrence.

Radicale refuses a rule it counts past its limit (10,000): by COUNT, by its estimate
(UNTIL - DTSTART) / one FREQ unit (INTERVAL and filters ignored) and by walking a bounded
rule set in full. `compat_bounds` then bounds the rule by an UNTIL at the limit, which for a
rule with a real end inside the horizon (every 90 minutes for two months: 960 occurrences,
but 86,400 minutes by Radicale's estimate) stopped the client's copy days or years early
while busy time counted it in full. Radicale counts RDATEs only beside a rule, so the same
occurrences as a DTSTART and an RDATE list, with no RRULE, are taken whole (measured: 50,000
RDATEs stored in 1.4 s, a three-day query 0.1-0.2 s, an expanding one 1-3 s, at load 7-10); every reader
treats RDATE like the rule's occurrences (EXDATEs and overrides still apply to them).
Past `RDATE_ROOM` occurrences the copy stays cut, and says so in its reason (`status`).
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from itertools import islice

from dateutil import rrule

from calmirror.compat_bounds import bounded_rule, start_of
from calmirror.ical_lines import Event, Resource, name_of, params_of, value_of

RDATE_ROOM = 50_000  # occurrences one copy may list (~0.85 MB of RDATE values)


def rules_as_rdates(resource: Resource, horizon: dt.date, limit: int) -> tuple[bool, bool]:
    """(whether a rule was written out as RDATEs, whether one stays cut short: too many)."""
    written = cut = False
    for event in resource.events:
        rules = [(index, line) for index, line in event.top() if name_of(line) == "RRULE"]
        start_line = event.get("DTSTART")
        if len(rules) != 1 or start_line is None:
            continue
        index, line = rules[0]
        outcome = _written_out(resource, event, start_line, value_of(line), horizon, limit)
        if outcome is None:
            continue
        if isinstance(outcome, str):
            event.lines[index] = outcome
            written = True
        else:
            cut = True
    return written, cut


def _written_out(
    resource: Resource, event: Event, start_line: str, rule: str, horizon: dt.date, limit: int
) -> str | bool | None:
    """The RDATE line standing for the rule; False when the bound cuts it short and it has too
    many occurrences to list; None when the bound does not cut it (or it runs past the horizon)."""
    bounded = bounded_rule(resource, event, rule, horizon, limit)
    if bounded is None or "UNTIL=" not in bounded.upper():
        return None  # not over the limit, or opened up to the horizon
    start, form, tz = start_of(resource, start_line)
    every = _walk(rule, start, form, tz, RDATE_ROOM + 1)
    kept = _walk(bounded, start, form, tz, limit + 1)
    if every is None or kept is None or not every or (kept and kept[-1] >= every[-1]):
        return None
    if every[-1] >= dt.datetime.combine(horizon, dt.time()):
        return None  # runs past the horizon: the bound is as far as any copy reaches
    if len(every) > RDATE_ROOM:
        return False
    values = [_value(o, form) for o in every if o != start]
    params = params_of(start_line) if form != "date" else ";VALUE=DATE"
    return "RDATE" + params + ":" + ",".join(values)


def _walk(rule: str, start: dt.datetime, form: str, tz: dt.tzinfo | None, most: int) -> list[dt.datetime] | None:
    """The rule's occurrences as naive wall times (at most `most`), its UNTIL read in the
    event's zone as RFC 5545 says; None when dateutil cannot read the rule."""
    with suppress(ValueError, TypeError, OverflowError):
        if form in ("zoned", "utc") and "UNTIL=" in rule.upper():
            aware = start.replace(tzinfo=tz)
            walk = rrule.rrulestr(rule, dtstart=aware, cache=False)
            return [o.astimezone(tz).replace(tzinfo=None) for o in islice(iter(walk), most)]
        naive = rrule.rrulestr(rule, dtstart=start, ignoretz=True, cache=False)
        return list(islice(iter(naive), most))
    return None


def _value(at: dt.datetime, form: str) -> str:
    if form == "date":
        return at.strftime("%Y%m%d")
    if form == "utc":
        return at.strftime("%Y%m%dT%H%M%SZ")
    return at.strftime("%Y%m%dT%H%M%S")  # floating, or wall time in DTSTART's TZID
