"""Which local collections mirror which calendars: a conflict calendar's slug is chosen once,
kept in the state, and its collection made, renamed or recoloured to follow iCloud; a
calendar that stops being a conflict calendar loses its mirror.

A part of `Mirror` (mixed in) because a pass begins by making sure its collection exists,
and `FeedMirror` names its feeds' collections its own way (`ensure_mirror`).
"""

from __future__ import annotations

import re
import unicodedata

from calmirror.config import Settings
from calmirror.local.layout import is_feed_id
from calmirror.local.store import LocalStore
from calmirror.model import CalendarRow, account_of
from calmirror.state import State


def slugify(name: str, taken: set[str], fallback: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40]
    base = base or re.sub(r"[^a-z0-9]+", "", fallback.lower())[:8] or "calendar"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


class MirrorCollections:
    state: State
    store: LocalStore
    settings: Settings

    def ensure_mirror(self, cal: CalendarRow) -> str:
        """The local slug of a conflict calendar, creating its collection when new."""
        row = self.state.mirror(cal.id)
        taken = {r.slug for r in self.state.mirrors() if r.calendar_id != cal.id and r.slug}
        owner = account_of(cal.id)  # a further account's mirrors are `icloud-<account>-<slug>/`
        slug = row.slug if row and row.slug else slugify(f"{owner} {cal.name}" if owner else cal.name, taken, cal.id)
        existed = slug in set(self.store.list_mirrors())
        if not row or row.slug != slug:
            # Recorded before the collection is made: a collection no record claims is left
            # over from a forgotten account and goes (`prune`), also in another process.
            self.state.update_mirror(cal.id, slug=slug)
        self.store.ensure_mirror(slug, cal.name, cal.color)  # creates it, or follows a rename or new colour
        if not existed and row and row.sync_token:
            # The local copy was lost (store wiped): start again from a full listing.
            self.state.apply_mirror_map(cal.id, [], [], {}, replace=True, sync_token=None)
        return slug

    def remove(self, calendar_id: str) -> None:
        row = self.state.mirror(calendar_id)
        if row and row.slug:
            self.store.delete_mirror(row.slug)
        self.state.forget_mirror(calendar_id)

    def prune(self) -> list[str]:
        """Drop mirrors of calendars that are no longer conflict calendars."""
        wanted = set(self.settings.icloud.conflicts)
        removed = [
            r.calendar_id for r in self.state.mirrors() if r.calendar_id not in wanted and not is_feed_id(r.calendar_id)
        ]
        for calendar_id in removed:
            self.remove(calendar_id)
        self._prune_unclaimed()
        return removed

    def _prune_unclaimed(self) -> None:
        """Remove iCloud mirrors no record claims: `disconnect` forgets the first account's
        records, and its mirrors stayed behind, shown to clients but counted nowhere; a
        calendar mirrored again under the same slug then found their files as strays."""
        claimed = {r.slug for r in self.state.mirrors() if r.slug}
        for slug in self.store.list_mirrors():
            if slug not in claimed and not is_feed_id(slug):
                self.store.delete_mirror(slug)
