"""Compatible copies of series with two overrides of one occurrence (two VEVENTs of one UID
with the same RECURRENCE-ID, as a client that appended an update instead of replacing the
old override writes them).

Busy time (recurring-ical-events) keeps one override per occurrence: the one with the higher
SEQUENCE, the first of equals, a missing SEQUENCE below SEQUENCE:0. Radicale's time-range walk
shows every one of them, so a client of the mirror saw the occurrence twice, once where
nobody is busy. The copy keeps exactly the override busy time keeps and drops the others.
"""

from __future__ import annotations

import re

from calmirror.compat_series import _keys
from calmirror.ical_lines import Event, Resource, value_of

ONE_OVERRIDE_EACH = "overrides of an occurrence already overridden dropped (the higher SEQUENCE kept)"

_RECURRENCE_ID = re.compile(r"^RECURRENCE-ID[^\r\n]*:([^\r\n:]*)\r?$", re.MULTILINE | re.IGNORECASE)


def may_repeat_overrides(text: str) -> bool:
    """Cheap first look: two RECURRENCE-ID lines with one value (the same instant written in
    two forms is left as it is)."""
    if "RECURRENCE-ID" not in text:  # (written upper-case: a lower-case one is left as it is)
        return False
    values = [value.strip() for value in _RECURRENCE_ID.findall(text)]
    return len(set(values)) < len(values)


def _sequence(event: Event) -> int:
    line = event.get("SEQUENCE")
    if line is None:
        return -1  # as recurring-ical-events reads a missing one
    try:
        return int(value_of(line).strip())
    except ValueError:
        return -1


def one_override_each(resource: Resource) -> bool:
    """Drop every override that keeps none of the occurrences it names, as recurring-ical-events
    decides: per instant, the override with the highest SEQUENCE, the first of equals."""
    winners: dict[tuple[str, tuple[object, ...]], int] = {}
    placed: set[int] = set()
    for index, event in enumerate(resource.events):
        rid, uid = event.get("RECURRENCE-ID"), event.get("UID")
        keys = _keys(resource, rid) if rid is not None and uid is not None else set()
        if keys:
            placed.add(index)
        for key in keys:
            slot = (value_of(uid or "").strip(), key)
            held = winners.get(slot)
            if held is None or _sequence(event) > _sequence(resource.events[held]):
                winners[slot] = index
    kept = set(winners.values())
    dropped = placed - kept
    if not dropped:
        return False
    resource.events = [event for index, event in enumerate(resource.events) if index not in dropped]
    return True
