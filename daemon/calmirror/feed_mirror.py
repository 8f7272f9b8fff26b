"""The mirror executor as a feed needs it: the feed's privacy instead of a conflict
calendar's, its calendar id as its slug, and no pruning of its own (`feeds.FeedPoller`
removes a feed's mirror with the feed)."""

from __future__ import annotations

from dataclasses import replace

from calmirror.config import Settings
from calmirror.local.layout import feed_id
from calmirror.local.store import FEED_DISPLAYNAME_PREFIX, LocalStore
from calmirror.mirror import Mirror
from calmirror.model import CalendarRow, FeedRow
from calmirror.plan import MirrorPolicy
from calmirror.state import State


class FeedMirror(Mirror):
    """The mirror executor with a feed's privacy instead of a conflict calendar's."""

    def __init__(self, state: State, store: LocalStore, settings: Settings) -> None:
        super().__init__(state, store, settings)
        self.details: dict[str, str] = {}  # calendar id -> "full" | "busy"

    def ensure_mirror(self, cal: CalendarRow) -> str:
        row = self.state.mirror(cal.id)
        if row is None or row.slug != cal.id:  # a feed's slug is its calendar id, always
            self.state.update_mirror(cal.id, slug=cal.id)
        return super().ensure_mirror(cal)

    def policy(self, cal: CalendarRow, accept_empty: bool) -> MirrorPolicy:
        return replace(super().policy(cal, accept_empty), details=self.details.get(cal.id, "full"))

    def prune(self) -> list[str]:
        return []


def calendar_of(feed: FeedRow) -> CalendarRow:
    return CalendarRow(
        feed_id(feed.name), feed.url, FEED_DISPLAYNAME_PREFIX + feed.display, None, ("VEVENT",), writable=False
    )
