"""Who "me" is: whose answer to an invitation decides its busy time (only DECLINED frees it).

Every connected account's login, every address its server names for the user (iCloud's
calendar-user-address-set: aliases at icloud.com, me.com or a custom domain, often not the
Apple ID) and the configured `[availability] aliases`. One definition, so the busy index and
the busy-only mirror copies never disagree about an invitation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calmirror.config import Settings
from calmirror.state import State

if TYPE_CHECKING:  # the planner pulls in icalendar and the busy engine; `status` needs neither
    from calmirror.plan import MirrorPolicy


def my_addresses(state: State, settings: Settings) -> frozenset[str]:
    return state.my_addresses() | frozenset(settings.availability.aliases)


def copies_follow_me(state: State, calendar_id: str, policy: MirrorPolicy) -> bool:
    """A busy-only copy bakes in whether the user declined (the meeting becomes TRANSPARENT),
    so when "me" changed since a mirror's copies were made (an alias iCloud lists, one
    configured) the next pass fetches and makes every copy again. Returns whether it will."""
    if policy.details != "busy":
        return False
    key, me = f"mirror_me:{calendar_id}", sorted(policy.me)
    made = state.get_meta(key)
    if made == me:
        return False
    again = made is not None or bool(state.mirror_item_count(calendar_id))
    if again:
        state.refetch_mirror(calendar_id)
    state.set_meta(key, me)  # after: a crash in between makes them again, never leaves them stale
    return again
