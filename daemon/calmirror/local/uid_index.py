"""Which UID each item of a mirror holds, kept in memory and in a log beside Radicale's cache.

A batch must not give a UID to a second item (Radicale would then answer neither), so
each batch needs to know who holds its UIDs. Reading them from Radicale costs a file read
per item: a fresh process changing one event of a 100,000-event mirror spent 27 s there.
Mirrors are written only by `LocalStore` (clients are refused), so the index stays right
as long as a calmirror process wrote last. After each write the index appends what changed
to a log in the collection's cache folder, ending with the folder's inode and modification
time (nanoseconds); a process that starts later replays the log instead of reading every
item, and any difference from the folder's stamp (a crash between the files and the log,
another program, a restored backup, a swapped folder) means reading the UIDs again. The
log is rewritten whole once it holds twice as many changes as the index has items, so
appending stays proportional to the batch and replaying to the collection.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

LOG_NAME = "calmirror-uids"
_MIN_COMPACT = 10_000


@dataclass
class Uids:
    """href -> UID and UID -> one href holding it, for one collection."""

    stamp: tuple[int, int]
    uid_of: dict[str, str] = field(default_factory=dict)
    owner_of: dict[str, str] = field(default_factory=dict)
    appended: int = 0  # changes in the log since it was last written whole

    @classmethod
    def of(cls, stamp: tuple[int, int], pairs: Iterable[tuple[str, str]]) -> Uids:
        made = cls(stamp)
        made.apply(dict(pairs), ())
        return made

    def apply(self, upserts: dict[str, str], removed: Iterable[str]) -> None:
        for href in removed:
            self._drop(href)
        for href, uid in upserts.items():
            self._drop(href)
            self.uid_of[href] = uid
            self.owner_of.setdefault(uid, href)

    def _drop(self, href: str) -> None:
        uid = self.uid_of.pop(href, None)
        if uid is not None and self.owner_of.get(uid) == href:
            del self.owner_of[uid]


def _stamp(folder: Path) -> tuple[int, int]:
    found = folder.stat()
    return found.st_ino, found.st_mtime_ns


class UidIndex:
    def __init__(self) -> None:
        self._entries: dict[str, Uids] = {}

    def current(self, name: str, folder: Path, log: Path, read_all: Callable[[], Iterable[tuple[str, str]]]) -> Uids:
        """The UIDs of every item of `name`; the caller holds the store lock and must call
        `written` or `forget` after changing the folder."""
        stamp = _stamp(folder)
        entry = self._entries.get(name)
        if entry is None or entry.stamp != stamp:
            entry = _replay(log, stamp)
            if entry is None:
                entry = Uids.of(stamp, read_all())
                _rewrite(log, entry)
            self._entries[name] = entry
        return entry

    def written(self, name: str, folder: Path, log: Path, upserts: dict[str, str], removed: list[str]) -> None:
        """Record our own write, still under the lock: in memory, then appended to the log."""
        entry = self._entries[name]
        entry.apply(upserts, removed)
        entry.stamp = _stamp(folder)
        entry.appended += len(upserts) + len(removed)
        if entry.appended > max(_MIN_COMPACT, 2 * len(entry.uid_of)):
            _rewrite(log, entry)
            return
        try:
            with log.open("ab") as sink:
                pickle.dump((upserts, removed, entry.stamp), sink, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            self.forget(name, log)

    def forget(self, name: str, log: Path) -> None:
        self._entries.pop(name, None)
        with contextlib.suppress(OSError):
            log.unlink()


def _replay(log: Path, stamp: tuple[int, int]) -> Uids | None:
    """The index the log describes, or None when it does not end at `stamp` (or is unreadable)."""
    uid_of: dict[str, str] = {}
    at: tuple[int, int] = (0, 0)
    appended = 0
    try:
        with log.open("rb") as source:
            while True:
                try:
                    upserts, removed, at = pickle.load(source)
                except EOFError:
                    break
                for href in removed:
                    uid_of.pop(href, None)
                uid_of.update(upserts)  # the owners are worked out once, below
                appended += len(upserts) + len(removed)
    except (OSError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError):
        return None
    if tuple(at) != stamp:
        return None
    return Uids(stamp, uid_of, {uid: href for href, uid in uid_of.items()}, appended)


def _rewrite(log: Path, entry: Uids) -> None:
    """The whole index as one record, replacing the log atomically (best effort: without a
    log the next process reads the UIDs from the items)."""
    scratch = log.with_name(f".{log.name}.{os.getpid()}")
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with scratch.open("wb") as sink:
            pickle.dump((entry.uid_of, [], entry.stamp), sink, protocol=pickle.HIGHEST_PROTOCOL)
        scratch.replace(log)
        entry.appended = len(entry.uid_of)
    except OSError:
        with contextlib.suppress(OSError):
            scratch.unlink()
            log.unlink()
