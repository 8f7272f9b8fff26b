"""Reading busy time out of iCalendar objects that icalendar refuses as a whole.

icalendar reads a VEVENT leniently (a bad value becomes a broken property) but refuses the
whole object over one bad value in a VALARM (`TRIGGER:xyz`), a VTIMEZONE offset, another
component (a to-do's DUE) or one line it cannot split. None of those says anything about
busy time, yet the object's events were lost with them. So when the object does not parse,
it is read again with only what busy time needs: the VCALENDAR's own lines, its VTIMEZONEs
and VEVENTs without their alarms, and no line that cannot be split; then, if a time zone
block is what breaks, without the zone blocks (a TZID is then resolved by name, and an
unknown one is reported). Bytes that are not iCalendar at all still fail.

Inside a VEVENT, a broken EXDATE is dropped (the occurrence it meant to remove counts: busy
time errs towards busy) rather than losing the whole series.
"""

from __future__ import annotations

import re

import icalendar
from icalendar.parser import Contentline
from icalendar.prop.broken import vBroken

KEPT = frozenset({"VCALENDAR", "VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT"})
DROPPED_WHEN_BROKEN = ("EXDATE", "EXRULE")
_FOLD = re.compile(r"\r?\n[ \t]")
#: Lines end at a line break only, as icalendar splits them: `str.splitlines` also splits at
#: \x1c-\x1e, \x85 and \u2028, which a value may hold (a SUMMARY was cut at one).
_NEWLINE = re.compile(r"\r?\n")


def busy_lines(text: str, *, zones: bool = True) -> str:
    """The object with only the components and lines busy time needs (see above)."""
    kept: list[str] = []
    skipping = 0  # depth inside a component that is not kept
    for line in _NEWLINE.split(_FOLD.sub("", text)):
        if not line.strip():
            continue
        upper = line.upper()
        if upper.startswith(("BEGIN:", "END:")):
            name = upper.split(":", 1)[1].strip()
            opening = upper.startswith("BEGIN:")
            if skipping or name not in KEPT or (not zones and name in ("VTIMEZONE", "STANDARD", "DAYLIGHT")):
                skipping += 1 if opening else -1
                continue
            kept.append(line)
            continue
        if skipping:
            continue
        try:
            Contentline(line).parts()
        except Exception:  # one line that cannot be split is one property lost, not the object
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def parse_leniently(text: str) -> icalendar.Calendar:
    """icalendar's Calendar of `busy_lines(text)`, with the zone blocks if they parse, else
    without them; raises what icalendar raises when neither does."""
    try:
        return icalendar.Calendar.from_ical(busy_lines(text))
    except Exception:
        return icalendar.Calendar.from_ical(busy_lines(text, zones=False))


def drop_broken(component: icalendar.Component) -> None:
    """Remove a VEVENT's broken properties that would otherwise make it unusable, where
    leaving them out can only add busy time."""
    for name in DROPPED_WHEN_BROKEN:
        value = component.get(name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, vBroken) for v in values):
            good = [v for v in values if not isinstance(v, vBroken)]
            del component[name]
            for v in good:
                component.add(name, v)
