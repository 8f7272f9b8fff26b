"""Whether one event occurrence blocks time, decided from its own properties.

Kept apart from expansion because these rules are what users argue about ("why is my
declined meeting still blocking?"), and a small module with one table of reasons is
easier to audit than conditions scattered through the recurrence code. Everything here
is pure and works on an `EventInfo` summary built once per VEVENT, so the per-occurrence
check in a 10,000-event query is a handful of attribute reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import icalendar
from icalendar.prop import vDuration

# PARTSTAT values ordered by how strongly they commit the user's time. When the user
# appears on several ATTENDEE lines (Apple ID and an alias both invited), the strongest
# answer wins, so one stale DECLINED on an alias cannot free a meeting accepted elsewhere.
_PARTSTAT_STRENGTH = {
    "DECLINED": 0,
    "DELEGATED": 1,
    "NEEDS-ACTION": 2,
    "TENTATIVE": 3,
    "ACCEPTED": 4,
    "COMPLETED": 4,
    "IN-PROCESS": 4,
}


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What the busy decision needs from one VEVENT (a master or an override).

    `attendees` keeps every address form of each ATTENDEE line (the value and the
    EMAIL parameter Apple adds) so that matching against the user's addresses happens
    per query: the same parsed calendar can be asked about under different `me` sets.
    """

    uid: str
    summary: str
    free_by_itself: bool  # TRANSP:TRANSPARENT, STATUS:CANCELLED or Outlook's BUSYSTATUS:FREE
    tentative: bool  # STATUS:TENTATIVE or Outlook's BUSYSTATUS:TENTATIVE
    attendees: tuple[tuple[frozenset[str], str], ...]  # (addresses, PARTSTAT)
    travel: dt.timedelta = dt.timedelta(0)  # Apple's travel time before a timed occurrence
    # Outlook's BUSYSTATUS:OOF (out of office): busy, and reported as FBTYPE=BUSY-UNAVAILABLE
    unavailable: bool = False


def normalise_address(value: str) -> str:
    """Lower-case an address and drop the `mailto:` scheme, which iCloud writes in any case."""
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.lower()


def _text(component: icalendar.Component, name: str) -> str:
    value: Any = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):  # a repeated property: the first one is what clients show
        value = value[0] if value else ""
    return str(value).strip().upper()


def _attendee_lines(component: icalendar.Component) -> Iterable[Any]:
    lines: Any = component.get("ATTENDEE")
    if lines is None:
        return ()
    return lines if isinstance(lines, list) else (lines,)


def travel_time(component: icalendar.Component) -> dt.timedelta:
    """Apple's X-APPLE-TRAVEL-DURATION: the time the user's devices block before the event.

    Cal.com's Apple integration counts it busy, and so do we: a booking in that gap is one
    the user cannot reach. Anything but a positive duration means none.
    """
    value: Any = component.get("X-APPLE-TRAVEL-DURATION")
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return dt.timedelta(0)
    try:
        found = getattr(value, "dt", None)
    except Exception:  # a broken value (icalendar raises on reading it): no travel time, the event counts
        return dt.timedelta(0)
    if not isinstance(found, dt.timedelta):
        try:
            found = vDuration.from_ical(str(value).strip())
        except ValueError:
            return dt.timedelta(0)
    return found if isinstance(found, dt.timedelta) and found > dt.timedelta(0) else dt.timedelta(0)


def event_info(component: icalendar.Component) -> EventInfo:
    """Summarise a VEVENT once so that each of its occurrences is judged cheaply."""
    transp = _text(component, "TRANSP")
    status = _text(component, "STATUS")
    ms_status = _text(component, "X-MICROSOFT-CDO-BUSYSTATUS")
    attendees: list[tuple[frozenset[str], str]] = []
    for line in _attendee_lines(component):
        params = getattr(line, "params", {})
        addresses = {normalise_address(str(line))}
        email = params.get("EMAIL")
        if email:
            addresses.add(normalise_address(str(email)))
        partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).strip().upper()
        attendees.append((frozenset(addresses), partstat))
    return EventInfo(
        uid=str(component.get("UID", "")),
        summary=str(component.get("SUMMARY", "")),
        free_by_itself=transp == "TRANSPARENT" or status == "CANCELLED" or ms_status == "FREE",
        tentative=status == "TENTATIVE" or ms_status == "TENTATIVE",
        attendees=tuple(attendees),
        travel=travel_time(component),
        unavailable=ms_status == "OOF" and status != "TENTATIVE",
    )


def my_partstat(info: EventInfo, me: frozenset[str]) -> str | None:
    """The user's answer to an invitation, or None when the user is not an attendee."""
    best: str | None = None
    for addresses, partstat in info.attendees:
        if addresses.isdisjoint(me):
            continue
        if best is None or _PARTSTAT_STRENGTH.get(partstat, 2) > _PARTSTAT_STRENGTH.get(best, 2):
            best = partstat
    return best


def is_busy(info: EventInfo, me: frozenset[str], tentative_busy: bool) -> bool:
    """The availability rule of the issue, in one place.

    Only an explicit DECLINED frees time; NEEDS-ACTION counts as busy because an
    unanswered invitation is exactly the meeting a booking page must not collide with.
    The user's own PARTSTAT=TENTATIVE follows the same switch as STATUS:TENTATIVE.
    """
    if info.free_by_itself:
        return False
    answer = my_partstat(info, me) if me and info.attendees else None
    if answer == "DECLINED":
        return False
    if info.tentative or answer == "TENTATIVE":
        return tentative_busy
    return True
