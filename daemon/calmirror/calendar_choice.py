"""Which calendar a person means, and whether it may take the role they chose for it.

A calendar is named by id, URL or name, in any account (`ACCOUNT/NAME` picks one); a near
miss gets a "did you mean". The checks raise the one message the command line and the web
page both show.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from calmirror.config import Settings
from calmirror.errors import CalendarChoiceError, NotConnected, UserError
from calmirror.model import PRIMARY, PRIMARY_SPELLING, CalendarRow, account_of
from calmirror.state import State

SUBSCRIPTION_HINT = (
    "is a subscription (webcal/published) calendar, not a CalDAV calendar of your account; "
    "to let its events block your time, subscribe with `calmirror feeds add URL`"
)

DETAILS = ("full", "busy")


def is_subscription(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered.startswith(("webcal://", "webcals://")) or (
        lowered.startswith(("http://", "https://")) and (lowered.endswith(".ics") or "/published/" in lowered)
    )


def address(cal: CalendarRow) -> str:
    """How a user names a calendar: its name, prefixed `ACCOUNT/` in a named account."""
    owner = account_of(cal.id)
    return f"{owner}/{cal.name}" if owner else cal.name


def _in_account(state: State, name_or_id: str, calendars: list[CalendarRow]) -> tuple[str, list[CalendarRow]]:
    """`work/Team` (or `default/Team`) narrows the search to one account's calendars."""
    label, slash, rest = name_or_id.partition("/")
    if not slash or not rest or "://" in name_or_id:
        return name_or_id, calendars
    owner = PRIMARY if label == PRIMARY_SPELLING else label
    if owner != PRIMARY and state.account(owner) is None:
        return name_or_id, calendars
    return rest, [c for c in calendars if account_of(c.id) == owner]


def find_calendar(state: State, name_or_id: str) -> CalendarRow:
    """A calendar by id, URL or name, in any account; `ACCOUNT/NAME` picks the account."""
    if is_subscription(name_or_id):
        raise CalendarChoiceError(name_or_id, SUBSCRIPTION_HINT)
    every = state.calendars()
    if not every and state.account() is None:
        raise NotConnected
    wanted, calendars = _in_account(state, name_or_id, every)
    matchers: tuple[Callable[[CalendarRow], bool], ...] = (
        lambda c: c.id == name_or_id,
        lambda c: c.url.rstrip("/") == name_or_id.rstrip("/"),
        lambda c: c.id.rpartition("/")[2] == wanted,
        lambda c: c.name == wanted,
        lambda c: c.name.lower() == wanted.lower(),
    )
    for match in matchers:
        hits = [c for c in (every if match is matchers[0] or match is matchers[1] else calendars) if match(c)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            spelled = " or ".join(sorted({address(c) if account_of(c.id) else f"default/{c.name}" for c in hits}))
            raise CalendarChoiceError(
                name_or_id, f"several calendars have this name; name one as ACCOUNT/CALENDAR ({spelled})"
            )
    names = [address(c).lower() for c in every]
    close = difflib.get_close_matches(name_or_id.lower(), names, n=1, cutoff=0.6)
    suggestion = next((address(c) for c in every if close and address(c).lower() == close[0]), None)
    hint = f"did you mean {suggestion!r}? " if suggestion else ""
    raise CalendarChoiceError(name_or_id, f"no such calendar; {hint}`calmirror calendars` lists them")


def check_linkable(cal: CalendarRow) -> None:
    if not cal.is_event_calendar:
        raise CalendarChoiceError(cal.name, "holds reminders (VTODO), not events; it cannot be linked")
    if not cal.writable:
        raise CalendarChoiceError(
            cal.name,
            "is read-only (shared with you without write access); it can be a conflict calendar but not the linked one",
        )


def check_conflict(cal: CalendarRow) -> None:
    if not cal.is_event_calendar:
        raise CalendarChoiceError(cal.name, "holds reminders (VTODO), not events; it cannot block time")


def check_details(details: str) -> None:
    if details not in DETAILS:
        raise UserError(f"details must be 'full' or 'busy', not {details!r}")


def check_privacy(cal: CalendarRow, conflicts: tuple[str, ...] | list[str]) -> None:
    """Only a conflict calendar is copied, so only its copies' details can be chosen. A reminders
    list is said as such first: `conflicts add` would refuse it in turn."""
    check_conflict(cal)
    if cal.id not in conflicts:
        raise CalendarChoiceError(
            cal.name,
            f"is not a conflict calendar, so nothing of it is copied; run `calmirror conflicts add {cal.name!r}` first",
        )


def role(settings: Settings, cal: CalendarRow) -> str:
    if cal.id == settings.icloud.linked:
        return "linked"
    if cal.id in settings.icloud.conflicts:
        return "conflict"
    return "none"
