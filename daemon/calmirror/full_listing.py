"""Now and then a pass lists every ETag instead of asking for the changes since its token.

A sync token is iCloud's promise that the changes after it will be reported. iCloud lists a
fresh write late (ICLOUD.md #17); should a token ever move past a write that had not shown
yet, that change would never be reported, and the mirror would keep the old version, or
miss the event, until it changed again. Comparing every ETag of a full listing with the
mirror finds such a change; it costs one listing request per calendar (plus the fetch of
what really differs), so it runs every `[sync] full_listing_hours`, not every pass. What a
full listing misses is fetched before it counts as deleted (`late_listing`), so the
listing's own lateness cannot delete anything either.
"""

from __future__ import annotations

import time

from calmirror.state import State


def _key(calendar_id: str) -> str:
    return f"full_listing_at:{calendar_id}"


def due(last_at: float | None, now: float, every_hours: float) -> bool:
    """A calendar never listed whole by this home is due: its first pass may have been a
    token handed over by an earlier version, or the list was never kept."""
    return last_at is None or now - last_at >= every_hours * 3600 or now < last_at


def full_listing_due(state: State, calendar_id: str, every_hours: float, now: float | None = None) -> bool:
    at = state.get_meta(_key(calendar_id))
    return due(None if at is None else float(at), time.time() if now is None else now, every_hours)


def listed_whole(state: State, calendar_id: str, now: float | None = None) -> None:
    """After a pass that compared a full listing and read every item it needed."""
    state.set_meta(_key(calendar_id), time.time() if now is None else now)
