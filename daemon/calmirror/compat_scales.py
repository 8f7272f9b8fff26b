"""Compatible copies of rules in another calendar scale (RFC 7529 RSCALE), which Radicale
refuses outright ("unknown parameter 'RSCALE'"), so that clients see what busy time counts.

Apple Calendar writes `RRULE:RSCALE=CHINESE;FREQ=YEARLY` for a lunar birthday and
`RSCALE=GREGORIAN;SKIP=...` for a rule that moves what a month lacks (29 February). No
well-kept Python library walks Chinese or Hebrew rules (dateutil knows only the Gregorian
calendar), so busy time counts what can be known (`availability.recurrence._simplified`):

- **RSCALE=GREGORIAN** is a plain rule; SKIP=OMIT (the default) is what dateutil does;
  SKIP=BACKWARD on a rule of one day a month (or a year of one month) is written
  `BYMONTHDAY=28,...,D;BYSETPOS=-1`, which moves the occurrence to the month's last day as
  RFC 7529 does (`availability.skip`); an occurrence SKIP=FORWARD (or BACKWARD on other
  shapes) would move, to 1 March, is left out and not counted toward a COUNT, which then
  runs on past it. The copy drops RSCALE and SKIP, and writes the same rule.
- **Any other scale**: DTSTART (always an occurrence), RDATEs and overrides count; later
  occurrences of the rule are not known. The copy drops the rule, and its reason, shown by
  `calmirror status`, says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from calmirror.availability.skip import backward_as_setpos, is_backward
from calmirror.compat_bounds import start_of
from calmirror.ical_lines import Resource, name_of, params_of, value_of

GREGORIAN_SCALE = (
    "RSCALE=GREGORIAN read as a plain rule "
    "(SKIP=BACKWARD as the month's last day; an occurrence SKIP=FORWARD would move is left out, not counted)"
)
OTHER_SCALE = "a rule in another calendar scale (RSCALE) dropped: its occurrences after DTSTART are not known"


def needs_scale_fixes(text: str) -> bool:
    """Cheap first look: an RRULE names a calendar scale."""
    return "RSCALE=" in text.upper()


def scale_of(rule: str) -> str | None:
    """The RSCALE a rule names (upper case), or None."""
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.strip().upper() == "RSCALE":
            return value.strip().upper()
    return None


def gregorian(rule: str, start: dt.date | None = None) -> str:
    """A Gregorian RSCALE rule as a plain RFC 5545 rule (SKIP=BACKWARD as busy time reads it,
    `availability.skip`, when DTSTART is known)."""
    parts: dict[str, list[Any]] = {}
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            parts[key.strip().upper()] = value.split(",")
    backward = is_backward(parts)
    parts = {k: v for k, v in parts.items() if k not in ("RSCALE", "SKIP")}
    moved = backward_as_setpos(parts, start) if backward and start is not None else None
    return ";".join(f"{key}={','.join(str(v) for v in values)}" for key, values in (moved or parts).items())


def plain_gregorian_rules(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        start = _start(resource, event.get("DTSTART"))
        for index, line in event.top():
            if name_of(line) == "RRULE" and scale_of(value_of(line)) == "GREGORIAN":
                event.lines[index] = "RRULE" + params_of(line) + ":" + gregorian(value_of(line), start)
                changed = True
    return changed


def _start(resource: Resource, line: str | None) -> dt.date | None:
    if line is None:
        return None
    try:
        return start_of(resource, line)[0]
    except (ValueError, OverflowError):
        return None


def drop_other_scales(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        drop = {
            index
            for index, line in event.top()
            if name_of(line) == "RRULE" and scale_of(value_of(line)) not in (None, "GREGORIAN")
        }
        if drop:
            event.lines = [line for index, line in enumerate(event.lines) if index not in drop]
            changed = True
    return changed
