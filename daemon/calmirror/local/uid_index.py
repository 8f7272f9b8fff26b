"""Which UID each item of a mirror holds, kept in memory between batches.

A batch must not give a UID to a second item (Radicale would then answer neither), so
each batch needs the UIDs of the whole mirror. Reading them from Radicale costs a file
read per item; at one batch of 100 per multiget that made an initial 10,000-event mirror
quadratic. Mirrors are written only by `LocalStore` (clients are refused), so the index
stays right as long as this process wrote last: each entry remembers the folder's inode
and modification time (nanoseconds) after our own write, and any difference (another
process, a restored backup, a swapped folder) means reading the UIDs again. Listing the
folder instead would cost O(n) per batch again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from radicale.storage import multifilesystem


@dataclass
class _Entry:
    stamp: tuple[int, int]
    uids: dict[str, str]


def _stamp(folder: Path) -> tuple[int, int]:
    found = folder.stat()
    return found.st_ino, found.st_mtime_ns


class UidIndex:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def current(self, name: str, folder: Path, collection: multifilesystem.Collection) -> dict[str, str]:
        """href -> UID of every item of `name`; the caller holds the store lock."""
        entry = self._entries.get(name)
        if entry is not None and entry.stamp == _stamp(folder):
            return dict(entry.uids)
        uids = {item.href: item.uid for item in collection.get_all() if item.href}
        self._entries[name] = _Entry(_stamp(folder), uids)
        return dict(uids)

    def written(self, name: str, folder: Path, uids: dict[str, str]) -> None:
        """Record the UIDs after our own write, still under the lock."""
        self._entries[name] = _Entry(_stamp(folder), uids)

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)
