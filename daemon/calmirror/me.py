"""Who "me" is: whose answer to an invitation decides its busy time (only DECLINED frees it).

Every connected account's login, every address its server names for the user (iCloud's
calendar-user-address-set: aliases at icloud.com, me.com or a custom domain, often not the
Apple ID) and the configured `[availability] aliases`. One definition, so the busy index and
the busy-only mirror copies never disagree about an invitation.
"""

from __future__ import annotations

from calmirror.config import Settings
from calmirror.state import State


def my_addresses(state: State, settings: Settings) -> frozenset[str]:
    return state.my_addresses() | frozenset(settings.availability.aliases)
