"""calmirror's Radicale storage: the in-process fair lock, and no fsync for derived files.

Every storage object calmirror opens on a store (the server's, Radicale's own inside the
server, `LocalStore`'s) is a `FairLockStorage`: its store lock passes the process's
`store_lock.FairLock` before Radicale's `flock`, and a client's read of a calendar only
calmirror writes takes no lock (`store_lock.unlocked_reads`).

A client's PUT made Radicale write three files, each with an fsync of the file and of its
folder, all inside the exclusive store lock: the item, its item cache entry and its sync
history entry. Only the item is the client's data; the two others are derived from it (a
parse of the item, a hash chain of its ETags) and Radicale already reads past a broken one.
So they are written without an fsync (`StoreCollection`): the item is still durable before
the client hears 201 ("a 201 is never lost"). After a power cut the cache or history entry
may be missing or empty; an empty one (which Radicale's readers do not expect) is read as
missing here: the cache is computed again from the item, and a lost history entry makes
clients holding a sync token fetch that item once more.

Radicale also scans every history entry of the collection after each PUT, DELETE and MOVE
for entries of deleted items older than the sync-token age (30 days): once an hour per
collection is as good, and the scan no longer runs inside every write.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, AnyStr

from radicale import config as radicale_config
from radicale import item as radicale_item
from radicale import pathutils, types
from radicale.storage import multifilesystem
from radicale.storage.multifilesystem.cache import CacheContent

from calmirror.local.store_lock import hold_lane, lane_of_request, lock_for, reads_unlocked

CLEAN_HISTORY_EVERY_S = 3600.0


def size_ok(path: str, limit: int) -> bool:
    """Radicale's `file_check_size`; a file gone meanwhile passes, as one gone before it does."""
    try:
        return bool(pathutils.file_check_size(path, limit))
    except FileNotFoundError:
        return True


_derived = threading.local()
_deferred = threading.local()  # .folders: whose sync waits for this thread's lane to be given back
_cleaned: dict[str, float] = {}  # collection folder -> when its history was last cleaned here
_cleaned_lock = threading.Lock()


@contextmanager
def _without_fsync() -> Iterator[None]:
    before = getattr(_derived, "on", False)
    _derived.on = True
    try:
        yield
    finally:
        _derived.on = before


class StoreCollection(multifilesystem.Collection):
    """Radicale's collection writing its item cache and history without an fsync.

    Reading an item tolerates the file going away while it is read: a read that takes no
    store lock (`store_lock.unlocked_reads`) may meet a write deleting the item between
    Radicale listing the folder and reading the file. The item is then left out, as if the
    read came just after the write (Radicale raised FileNotFoundError: a 500).
    """

    def _get(self, href: str, verify_href: bool = True) -> radicale_item.Item | None:
        try:
            return super()._get(href, verify_href)
        except FileNotFoundError:
            return None

    def get_multi(self, hrefs: Iterable[str]) -> Iterator[tuple[str, radicale_item.Item | None]]:
        """Radicale's own, with `size_ok`."""
        files: set[str] | None = None
        folder = Path(self._filesystem_path)
        limit = self._storage._max_resource_size
        for href in hrefs:
            if files is None:
                files = {entry.name for entry in folder.iterdir()}
            path = str(folder / href)
            if not pathutils.is_safe_filesystem_path_component(href) or (href not in files and os.path.lexists(path)):
                yield href, None
            elif size_ok(path, limit):
                yield href, self._get(href, verify_href=False)

    @contextmanager
    def _atomic_write(self, path: str, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
        """Radicale's atomic write without its temporary folder: a hidden file beside the
        target (Radicale lists no name starting with a dot), renamed into place.

        Radicale makes and removes a folder for every file it writes, three per client PUT
        (item, cache, history), all inside the exclusive store lock; removing them was about
        a third of the time a write held the lock on this disk. A crash leaves at most a
        hidden file that nothing reads."""
        target = Path(path)
        scratch = target.with_name(f".Radicale.tmp-{secrets.token_hex(6)}-{target.name}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as in open()
        try:
            with open(descriptor, mode, newline=newline, encoding=None if "b" in mode else self._encoding) as tmp:
                yield tmp
                tmp.flush()
                self._storage._fsync(tmp)
            scratch.replace(target)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        self._storage._sync_directory(str(target.parent))

    def _store_item_cache(self, href: str, item: radicale_item.Item, cache_hash: str = "") -> CacheContent:
        with _without_fsync():
            return super()._store_item_cache(href, item, cache_hash)

    def _load_item_cache(self, href: str, cache_hash: str) -> CacheContent | None:
        try:
            return super()._load_item_cache(href, cache_hash)
        except EOFError:  # left empty by a power cut before it reached the disk
            return None

    def _update_history_etag(self, href: str, item: radicale_item.Item | None) -> str:
        with _without_fsync():
            try:
                return str(super()._update_history_etag(href, item))  # type: ignore[no-untyped-call]
            except EOFError:  # as above: the entry is as good as missing
                folder = self._storage._get_collection_cache_subfolder(
                    self._filesystem_path, ".Radicale.cache", "history"
                )
                with contextlib.suppress(FileNotFoundError):
                    (Path(folder) / href).unlink()
                return str(super()._update_history_etag(href, item))  # type: ignore[no-untyped-call]

    def _clean_history(self) -> None:
        now = time.monotonic()
        with _cleaned_lock:
            last = _cleaned.get(self._filesystem_path)
            if last is not None and now - last < CLEAN_HISTORY_EVERY_S:
                return
            _cleaned[self._filesystem_path] = now
        super()._clean_history()  # type: ignore[no-untyped-call]


class FairLockStorage(multifilesystem.Storage):
    """Radicale's storage whose store lock passes this process's `FairLock` before the `flock`."""

    _collection_class = StoreCollection

    def __init__(self, configuration: radicale_config.Configuration) -> None:
        super().__init__(configuration)
        self.fair_lock = lock_for(self._filesystem_folder)

    @types.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: object, **kwargs: object) -> Iterator[None]:
        if mode == "r" and reads_unlocked():
            yield
            return
        lane = lane_of_request(str(kwargs.get("request", "")), str(kwargs.get("path", ""))) if mode == "w" else None
        if lane is not None:
            with self.lane(lane, "w"):
                yield
            return
        fair = self.fair_lock.hold(mode) if mode == "r" or self.fair_lock.held() else self._exclusive()
        with fair, super().acquire_lock(mode, user, *args, **kwargs):
            yield

    @contextmanager
    def lane(self, collection: str, mode: str) -> Iterator[None]:
        """The store lock shared and the lane of `collection` (`user/name`) in `mode`: what a
        write touching only that collection's files needs (see `store_lock`). A thread holding
        the store lock exclusively holds every lane already."""
        if self.fair_lock.held() and not self.fair_lock.held_shared_only():
            yield
            return
        outermost = mode == "w" and getattr(_deferred, "folders", None) is None
        if outermost:
            _deferred.folders = []
        try:
            with (
                self.fair_lock.hold("r"),
                super().acquire_lock("r"),
                hold_lane(self._filesystem_folder, collection, mode),
            ):
                yield
        finally:
            if outermost:
                folders, _deferred.folders = _deferred.folders, None
                for folder in dict.fromkeys(folders):
                    super()._sync_directory(folder)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The in-process exclusive lock, taken only while no other process holds the `flock`.

        A writer holding the in-process lock while it waits for another process (the CLI
        reading the store) would stop this process's readers behind it for as long, and a
        PROPFIND that Radicale nests in it would wait for a writer that waits for the other
        process. So the writer looks (a non-blocking probe) once every reader of this process
        has left; if another process holds the lock it lets its turn go, waits a moment and
        queues again. Between the probe and Radicale's `flock` only another process can come
        in, and then that `flock` waits for it as before."""
        pause = 0.002
        while True:
            with self.fair_lock.hold("w"):
                if self._no_other_process_holds_the_lock():
                    yield
                    return
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _no_other_process_holds_the_lock(self) -> bool:
        with (Path(self._filesystem_folder) / ".Radicale.lock").open("w+") as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True  # closing the probe gives it back

    def _fsync(self, f: IO[AnyStr]) -> None:
        if not getattr(_derived, "on", False):
            super()._fsync(f)

    def _sync_directory(self, path: str) -> None:
        """A folder's sync inside a lane's write waits until the lane is given back (`lane`):
        the item file itself is synced before it is renamed into place, and the folder is
        synced before the writer answers, so a 201 still means both are on disk; the next
        writer of the collection no longer waits for this one's folder sync (about 13 ms per
        PUT under load)."""
        if getattr(_derived, "on", False):
            return
        folders = getattr(_deferred, "folders", None)
        if folders is not None:
            folders.append(path)
            return
        super()._sync_directory(path)
