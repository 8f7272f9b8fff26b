"""Compatible copies of series with two overrides of one occurrence (two VEVENTs of one UID
with the same RECURRENCE-ID, as a client that appended an update instead of replacing the
old override writes them).

Busy time (recurring-ical-events) keeps one override per occurrence: the one with the higher
SEQUENCE, the first of equals, a missing SEQUENCE below SEQUENCE:0. Radicale's time-range walk
shows every one of them, so a client of the mirror saw the occurrence twice, once where
nobody is busy. The copy keeps exactly the override busy time keeps and drops the others.

An override with a rule of its own is the one occurrence it overrides to busy time, and a
series of its own to Radicale: the copy drops its rule (`plain_overrides`).
"""

from __future__ import annotations

import re

from calmirror.compat_series import _keys
from calmirror.ical_lines import Event, Resource, name_of, value_of

ONE_OVERRIDE_EACH = "overrides of an occurrence already overridden dropped (the higher SEQUENCE kept)"
PLAIN_OVERRIDES = "rules of an override dropped (it is the one occurrence it overrides)"
_RULES = ("RRULE", "RDATE", "EXDATE", "EXRULE")

_RECURRENCE_ID = re.compile(r"^RECURRENCE-ID[^\r\n]*:([^\r\n:]*)\r?$", re.MULTILINE | re.IGNORECASE)


def may_repeat_overrides(text: str) -> bool:
    """Cheap first look: two RECURRENCE-ID lines with one value (the same instant written in
    two forms is left as it is)."""
    if "RECURRENCE-ID" not in text:  # (written upper-case: a lower-case one is left as it is)
        return False
    values = [value.strip() for value in _RECURRENCE_ID.findall(text)]
    return len(set(values)) < len(values)


def may_have_override_rules(text: str) -> bool:
    """Cheap first look: more RRULE lines than events without a RECURRENCE-ID."""
    if "RECURRENCE-ID" not in text:
        return False
    return text.count("\nRRULE") > text.count("BEGIN:VEVENT") - text.count("\nRECURRENCE-ID")


def plain_overrides(resource: Resource) -> bool:
    """An override carrying RRULE, RDATE or EXDATE of its own (DAVx5 once wrote them): busy time
    (recurring-ical-events) reads it as the one occurrence it overrides, Radicale walks its rule
    as a series of its own. The copy drops them (not from a RANGE=THISANDFUTURE override, which
    `compat_series.this_and_future` writes out)."""
    changed = False
    for event in resource.events:
        rid = event.get("RECURRENCE-ID")
        if rid is None or "THISANDFUTURE" in rid.upper():
            continue
        drop = {index for index, line in event.top() if name_of(line) in _RULES}
        if drop:
            event.lines = [line for index, line in enumerate(event.lines) if index not in drop]
            changed = True
    return changed


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
