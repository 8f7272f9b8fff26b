"""A mirror that a crash cut short is made to match its record again.

A pass marks the mirror unclean before its first write and clean once finished; a process
that has not seen a mirror yet and finds it unclean (or empty) compares its files with the
item map once (`_match_map`). A part of `Mirror` (mixed in).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from calmirror.local.layout import mirror_name
from calmirror.local.store import LocalStore
from calmirror.model import CalendarRow
from calmirror.state import State

log = logging.getLogger("calmirror.mirror")


class MirrorRecovery:
    state: State
    store: LocalStore
    on_change: Callable[[str], None]
    _dirty: set[str]  # calendars this process began writing and has not finished

    def _match_map(self, cal: CalendarRow, slug: str) -> None:
        """Make the mirror's files and the item map agree again after a crash.

        A batch is written before the map records it, so a crash in between leaves files the
        map does not know; if iCloud then deletes those events, no pass would ever remove
        them. Files without a map entry are removed and map entries without a file are
        fetched again (through one full listing). A pass marks the mirror unclean before its
        first write and clean once finished, so this runs (a folder listing and one query)
        only in a process that has not seen the mirror yet and finds it unclean (or empty).
        """
        files = self.store.mirror_item_names(slug)
        known = self.state.mirror_items(cal.id)
        mapped = {entry.local_href: href for href, entry in known.items() if entry.in_mirror}
        strays = sorted(files - mapped.keys())
        lost = sorted(href for local_href, href in mapped.items() if local_href not in files)
        if strays:
            self.store.apply_mirror(slug, [], strays)
            self.on_change(mirror_name(slug))
        if lost:
            self.state.refetch_items(cal.id, lost)
        if strays or lost:
            message = (
                f"{cal.name}: the mirror did not match its record (an earlier pass was interrupted, "
                f"or its files were changed outside calmirror): removed "
                f"{len(strays)} stray item(s), fetching {len(lost)} again"
            )
            log.warning("%s", message)
            self.state.record_event("warning", "mirror", message)
        self.state.set_mirror_clean(cal.id, True)
        self._dirty.discard(cal.id)

    def _writing(self, calendar_id: str) -> None:
        """Before the first write of a pass: a crash from here on leaves the mirror unclean."""
        if calendar_id not in self._dirty:
            self.state.set_mirror_clean(calendar_id, False)
            self._dirty.add(calendar_id)
