"""A mirror's item map as the planners see it, read row by row instead of loaded whole.

A pass used to load every row of the map before asking iCloud what changed: 100,000 rows
for one changed event. The planners (`plan.py`) take any mapping, so this view answers
each lookup from one indexed row (kept once read), its length from the mirror's counter,
and iterates the hrefs in pages only where a plan must walk them all (a full listing).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from calmirror.model import MirrorEntry

if TYPE_CHECKING:
    from calmirror.state.mirrors import MirrorTables

_FIRST_PAGE = 16  # a plan that looks for any surviving item usually stops at the first
_PAGE = 2_000


class KnownItems(Mapping[str, MirrorEntry]):
    """Read-through view of one calendar's map. After recording a batch, the mirror calls
    `recorded` so rows it changed are read again and the length follows."""

    def __init__(self, tables: MirrorTables, calendar_id: str) -> None:
        self._tables, self._calendar_id = tables, calendar_id
        self._rows: dict[str, MirrorEntry | None] = {}  # None: known not to be in the map
        self._count: int | None = None

    def preload(self, hrefs: Iterable[str]) -> None:
        """Read the rows of `hrefs` in a few queries (what a listing or batch will look up)."""
        missing = [href for href in hrefs if href not in self._rows]
        if not missing:
            return
        found = self._tables.mirror_entries(self._calendar_id, missing)
        for href in missing:
            self._rows[href] = found.get(href)

    def recorded(self, hrefs: Iterable[str], count: int) -> None:
        """The map changed for `hrefs` and now holds `count` items."""
        for href in hrefs:
            self._rows.pop(href, None)
        self._count = count

    def __getitem__(self, href: str) -> MirrorEntry:
        if href not in self._rows:
            self.preload([href])
        found = self._rows[href]
        if found is None:
            raise KeyError(href)
        return found

    def __len__(self) -> int:
        if self._count is None:
            self._count = self._tables.mirror_item_count(self._calendar_id)
        return self._count

    def __iter__(self) -> Iterator[str]:
        after, size = "", _FIRST_PAGE
        while True:
            page = self._tables.mirror_hrefs_after(self._calendar_id, after, size)
            yield from page
            if len(page) < size:
                return
            after, size = page[-1], _PAGE
