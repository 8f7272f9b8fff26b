"""Compatible copies of rules in another calendar scale (RFC 7529 RSCALE), which Radicale
refuses outright ("unknown parameter 'RSCALE'"), so that clients see what busy time counts.

Apple Calendar writes `RRULE:RSCALE=CHINESE;FREQ=YEARLY` for a lunar birthday and
`RSCALE=GREGORIAN;SKIP=...` for a rule that moves what a month lacks (29 February). No
well-kept Python library walks Chinese or Hebrew rules (dateutil knows only the Gregorian
calendar), so busy time counts what can be known (`availability.recurrence._simplified`):

- **RSCALE=GREGORIAN** is a plain rule; SKIP=OMIT (the default) is what dateutil does, and an
  occurrence SKIP=BACKWARD or FORWARD would move (to 28 February, to 1 March) is left out and
  not counted toward a COUNT, which then runs on past it. The copy drops RSCALE and SKIP.
- **Any other scale**: DTSTART (always an occurrence), RDATEs and overrides count; later
  occurrences of the rule are not known. The copy drops the rule, and its reason, shown by
  `calmirror status`, says so.
"""

from __future__ import annotations

from calmirror.ical_lines import Resource, name_of, params_of, value_of

GREGORIAN_SCALE = "RSCALE=GREGORIAN read as a plain rule (an occurrence SKIP would move is left out, not counted)"
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


def gregorian(rule: str) -> str:
    """A Gregorian RSCALE rule as a plain RFC 5545 rule."""
    return ";".join(p for p in rule.split(";") if p and p.partition("=")[0].strip().upper() not in ("RSCALE", "SKIP"))


def plain_gregorian_rules(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        for index, line in event.top():
            if name_of(line) == "RRULE" and scale_of(value_of(line)) == "GREGORIAN":
                event.lines[index] = "RRULE" + params_of(line) + ":" + gregorian(value_of(line))
                changed = True
    return changed


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
