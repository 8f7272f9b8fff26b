"""Radicale's "is this UID taken?" answered from memory instead of reading every item.

Radicale checks every new item a client PUTs against the UIDs of the whole collection
(`has_uid`, one item-cache read per item) while it holds the collection's write lock, so
every other client waits that long: the cost of a booking grows with `appointments/`, and
20 clients writing at once queue behind it. Here each collection's UIDs are read once and
then follow the writes this process makes through Radicale (`upload`, `delete`). The
entry remembers the folder's inode and modification time (nanoseconds) after the last of
our writes; any other change of the folder (another process, a restored backup, iCloud's
change written by the daemon) makes the next check read the UIDs again.

Clients' writes of different items run side by side (`storage.FairLockStorage.lane`), so a
new item's UID is locked from its check until its write is done and known here: a second
new item with the same UID is checked after it and refused, as Radicale refused it when
writes went one at a time.
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
from radicale import types

from calmirror.local import vobject_speed
from calmirror.local.keyed_locks import KeyedLocks
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


class _Folder:
    """What this process knows of one collection folder's UIDs, and its writes in flight.

    Writes of different items of a collection run side by side (`storage.FairLockStorage.
    lane`), so the folder's stamp moves under a write because of another: while any of this
    process's writes is in flight (`writing`), the stamp says nothing and the entry is
    trusted, since the lane they hold shared keeps every other writer out. The stamp is
    checked again when the first write of a run begins and taken when the last one ends."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.entry: _Uids | None = None
        self.writing = 0
        self.reading = 0  # checks waiting to read every UID: no new write begins meanwhile
        self.reads = 0  # times every UID was read, for tests


_folders: dict[str, _Folder] = {}
_folders_lock = threading.Lock()
_uids = KeyedLocks()  # (folder, UID): a new item's check until its write is done
_held = threading.local()  # .give_back: the UID locks this thread holds; .depth: its nested store locks


def _folder(path: str) -> _Folder:
    with _folders_lock:
        found = _folders.get(path)
        if found is None:
            found = _folders[path] = _Folder()
        return found


def _stamp(folder: str) -> tuple[int, int] | None:
    try:
        found = Path(folder).stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns


def reads_of(folder: str | Path) -> int:
    """How many times every UID of `folder` was read (for tests)."""
    return _folder(str(folder)).reads


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
        """Radicale asks before writing a new item; the UID stays locked for this thread until
        its store lock is given back (`UidCachedStorage`), so a second new item with the same
        UID, written side by side, asks only once the first is written and known here."""
        folder = self._filesystem_path
        if getattr(_held, "depth", 0):
            _held.give_back.append(_uids.take((folder, uid)))
        state = _folder(folder)
        with state.changed:
            entry = state.entry
            if entry is not None and (state.writing or entry.stamp == _stamp(folder)):
                return uid in entry.count
            state.reading += 1
            try:
                state.changed.wait_for(lambda: state.writing == 0)
                entry = state.entry
                if entry is None or entry.stamp != _stamp(folder):
                    entry = state.entry = self._read_uids(folder)
                    state.reads += 1
                return uid in entry.count
            finally:
                state.reading -= 1
                state.changed.notify_all()

    def _read_uids(self, folder: str) -> _Uids:
        fresh = _Uids(_stamp(folder) or (0, 0))
        for item in self.get_all():
            if item.href:
                fresh.set(item.href, item.uid)
        return fresh

    def upload(self, href: str, item: radicale_item.Item) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        self._begin()
        try:
            uploaded, replaced = super().upload(href, item)
        except BaseException:
            self._end(None)
            raise
        self._end((href, uploaded.uid))
        return uploaded, replaced

    def delete(self, href: str | None = None) -> None:
        self._begin()
        try:
            super().delete(href)
        except BaseException:
            self._end(None)
            raise
        self._end(None if href is None else (href, None))

    def _begin(self) -> None:
        folder = self._filesystem_path
        state = _folder(folder)
        with state.changed:
            state.changed.wait_for(lambda: state.reading == 0)
            if state.writing == 0 and state.entry is not None and state.entry.stamp != _stamp(folder):
                state.entry = None  # changed by someone else since our last write
            state.writing += 1

    def _end(self, followed: tuple[str, str | None] | None) -> None:
        """Apply our own write to the entry (`followed`: the href and its new UID, None for a
        deleted item); None for a write that failed or replaced everything: forget the entry."""
        folder = self._filesystem_path
        state = _folder(folder)
        with state.changed:
            state.writing -= 1
            if state.entry is not None:
                if followed is None:
                    state.entry = None
                else:
                    state.entry.set(*followed)
            if state.writing == 0:
                if state.entry is not None:
                    state.entry.stamp = _stamp(folder) or (0, 0)
                state.changed.notify_all()


class UidCachedStorage(FairLockStorage):
    """Gives back the UID locks a thread took in `has_uid` with its outermost store lock."""

    _collection_class = UidCachedCollection

    @types.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: object, **kwargs: object) -> Iterator[None]:
        depth = getattr(_held, "depth", 0)
        if depth == 0:
            _held.give_back = []
        _held.depth = depth + 1
        try:
            with super().acquire_lock(mode, user, *args, **kwargs):
                yield
        finally:
            _held.depth = depth
            if depth == 0:
                give_back, _held.give_back = _held.give_back, []
                for release in give_back:
                    release()


def storage_type() -> Callable[[radicale_config.Configuration], Any]:
    """A `[storage] type` value for Radicale's configuration (it calls a callable type)."""
    return UidCachedStorage
