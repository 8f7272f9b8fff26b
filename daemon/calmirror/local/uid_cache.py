"""Radicale's "is this UID taken?" answered from memory instead of reading every item.

Radicale checks every new item a client PUTs against the UIDs of the whole collection
(`has_uid`, one item-cache read per item) while it holds the store's exclusive lock, so
every other client waits that long: the cost of a booking grows with `appointments/`, and
20 clients writing at once queue behind it. Here each collection's UIDs are read once and
then follow the writes this process makes through Radicale (`upload`, `delete`, under the
same lock). Each entry remembers the folder's inode and modification time (nanoseconds)
after the last write it followed; any other change of the folder (another process, a
restored backup, a bulk write of a mirror) makes the next check read the UIDs again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radicale import config as radicale_config
from radicale import item as radicale_item

from calmirror.local import vobject_speed
from calmirror.local.storage import FairLockStorage, StoreCollection, size_ok

vobject_speed.install()  # before Radicale parses an object


@dataclass
class _Uids:
    stamp: tuple[int, int]
    uid_of: dict[str, str] = field(default_factory=dict)
    count: Counter[str] = field(default_factory=Counter)

    def set(self, href: str, uid: str | None) -> None:
        old = self.uid_of.pop(href, None)
        if old is not None:
            self.count[old] -= 1
            if self.count[old] <= 0:
                del self.count[old]
        if uid is not None:
            self.uid_of[href] = uid
            self.count[uid] += 1


_entries: dict[str, _Uids] = {}
_entries_lock = threading.Lock()


def _stamp(folder: str) -> tuple[int, int] | None:
    try:
        found = Path(folder).stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns


class UidCachedCollection(StoreCollection):
    """Radicale's collection with `has_uid` from memory (callers hold the store lock).

    Listing every item tolerates a file going away meanwhile, as reading one does
    (`StoreCollection`): a client's read of a mirror takes no store lock.
    """

    def get_all(self) -> Iterator[radicale_item.Item]:
        limit = self._storage._max_resource_size
        for href in self._list():
            item = self._get(href, verify_href=False)
            if item is not None and size_ok(str(Path(self._filesystem_path) / href), limit):
                yield item

    def has_uid(self, uid: str) -> bool:
        folder = self._filesystem_path
        stamp = _stamp(folder)
        with _entries_lock:
            entry = _entries.get(folder)
            if entry is not None and entry.stamp == stamp:
                return uid in entry.count
        fresh = _Uids(stamp or (0, 0))
        for item in self.get_all():
            if item.href:
                fresh.set(item.href, item.uid)
        with _entries_lock:
            _entries[folder] = fresh
        return uid in fresh.count

    def upload(self, href: str, item: radicale_item.Item) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        before = _stamp(self._filesystem_path)
        try:
            uploaded, replaced = super().upload(href, item)
        except BaseException:
            self._forget()
            raise
        self._followed(before, href, uploaded.uid)
        return uploaded, replaced

    def delete(self, href: str | None = None) -> None:
        before = _stamp(self._filesystem_path)
        try:
            super().delete(href)
        except BaseException:
            self._forget()
            raise
        if href is None:
            self._forget()
        else:
            self._followed(before, href, None)

    def _followed(self, before: tuple[int, int] | None, href: str, uid: str | None) -> None:
        """Apply our own write to an entry that was current just before it, else drop it."""
        folder = self._filesystem_path
        with _entries_lock:
            entry = _entries.get(folder)
            if entry is None:
                return
            if entry.stamp != before:
                del _entries[folder]
                return
            entry.set(href, uid)
            entry.stamp = _stamp(folder) or (0, 0)

    def _forget(self) -> None:
        with _entries_lock:
            _entries.pop(self._filesystem_path, None)


class UidCachedStorage(FairLockStorage):
    _collection_class = UidCachedCollection


def storage_type() -> Callable[[radicale_config.Configuration], Any]:
    """A `[storage] type` value for Radicale's configuration (it calls a callable type)."""
    return UidCachedStorage
