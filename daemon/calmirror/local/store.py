"""In-process access to the Radicale store: the only writer of the mirrors.

Mirrors are written here, never over HTTP: Radicale's PUT is O(n) per item (35 minutes
for 10,000 events through a peer syncing over HTTP), and storage-API writes pass no rights
check, which is what lets a collection clients can only read be filled at all. Every
method takes Radicale's store lock itself (shared for reads, exclusive for writes), the
same `flock` the server's request threads take, so callers never see a half-applied batch.
The lock is not re-entrant: no method here calls another while holding it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, cast

import radicale.storage
from radicale import pathutils
from radicale.storage import multifilesystem

from calmirror.local import batch, bulk, fairness, layout, listing, uid_index
from calmirror.local.check_pool import check_many, pool_for
from calmirror.local.errors import CollectionMissing, StoreError
from calmirror.local.items import Limits, PreparedItem, prepare_one
from calmirror.local.radicale_config import build_configuration
from calmirror.local.storage import FairLockStorage
from calmirror.local.store_lock import unlocked_reads
from calmirror.local.writer import BatchWriter

MIRROR_DISPLAYNAME_PREFIX = "iCloud · "
FEED_DISPLAYNAME_PREFIX = "Feed · "
_LOCK_ACTOR = "calmirror"


class ChangeSet(NamedTuple):
    """What changed in a collection since `token`.

    `full` is True when there was no usable old token (none given, malformed, or expired
    after Radicale's 30 days): `changed` is then every href now in the collection, and
    anything the caller knew that is missing from it was deleted.
    """

    token: str
    changed: list[str]
    full: bool


def mirror_displayname(name: str) -> str:
    """How a mirror is named to clients; a subscribed feed's name comes already prefixed."""
    return (
        name
        if name.startswith((MIRROR_DISPLAYNAME_PREFIX, FEED_DISPLAYNAME_PREFIX))
        else MIRROR_DISPLAYNAME_PREFIX + name
    )


def _calendar_props(displayname: str, color: str | None = None) -> dict[str, str]:
    props = {
        "tag": "VCALENDAR",
        "D:displayname": displayname,
        "C:supported-calendar-component-set": "VEVENT",
    }
    if color:
        props["ICAL:calendar-color"] = color
    return props


class LocalStore:
    def __init__(self, store_dir: Path, username: str) -> None:
        if not pathutils.is_safe_filesystem_path_component(username):
            raise StoreError(f"unusable local username {username!r}")
        self.store_dir = Path(store_dir)
        self.username = username
        configuration = build_configuration(self.store_dir, storage_type=FairLockStorage)
        try:
            self._storage = cast(FairLockStorage, radicale.storage.load(configuration))
        except (OSError, RuntimeError, ValueError) as error:
            raise StoreError(f"cannot open the calendar store in {self.store_dir}: {error}") from error
        self._limits = Limits.of(configuration)
        self._uids = uid_index.UidIndex()

    # --- locking and lookup ---------------------------------------------------------------

    @contextmanager
    def _locked(self, mode: str, lane: str | None = None) -> Iterator[None]:
        """Radicale's store lock; a write also announces itself to the server's readers
        (`fairness`), or back-to-back client listings would hold a mirror write for seconds.

        With `lane` (a collection's name), only that collection is locked, in `mode`, under
        the store lock held shared (`store_lock`): a batch of one mirror no longer holds
        clients' writes to `appointments/` behind it, and a read sees no write to it half done."""
        try:
            with contextlib.ExitStack() as stack:
                if lane is not None:
                    stack.enter_context(self._storage.lane(f"{self.username}/{lane}", mode))
                else:
                    if mode == "w":
                        stack.enter_context(fairness.gate_for(self.store_dir).writing())
                    stack.enter_context(self._storage.acquire_lock(mode, _LOCK_ACTOR))
                yield
        except OSError as error:
            raise StoreError(f"the calendar store in {self.store_dir} failed: {error}") from error

    def _path(self, name: str | None = None) -> str:
        return f"/{self.username}/" if name is None else f"/{self.username}/{name}/"

    def _find(self, name: str) -> multifilesystem.Collection | None:
        if not pathutils.is_safe_filesystem_path_component(name):
            return None
        found = next(iter(self._storage.discover(self._path(name))), None)
        if isinstance(found, multifilesystem.Collection):
            return found
        return None

    def _require(self, name: str) -> multifilesystem.Collection:
        found = self._find(name)
        if found is None:
            raise CollectionMissing(name)
        return found

    def collection_stamp(self, name: str) -> int | None:
        """The folder's modification time in nanoseconds: every write of an item file (a new
        file renamed into place, or a deletion) moves it, so an unchanged stamp means no
        sync is needed. None when the folder cannot be read."""
        try:
            return self.collection_dir(name).stat().st_mtime_ns
        except OSError:
            return None

    def collection_dir(self, name: str) -> Path:
        """The folder holding `name`'s item files (what the watcher observes)."""
        root = self._storage._get_collection_root_folder()
        relative = f"{self.username}/{name}"
        return Path(pathutils.path_to_filesystem(root, relative, self._storage._is_collision_free))

    def _cache_dir(self, name: str) -> Path:
        """Where Radicale keeps `name`'s item cache, sync history and tokens (cache subfolders on)."""
        root = self._storage._get_collection_root_folder()
        relative = os.path.relpath(self.collection_dir(name), root)
        return Path(self._storage._get_collection_cache_folder(), relative)

    # --- the fixed collections ------------------------------------------------------------

    def ensure_base(self) -> None:
        """Create the principal, `appointments`, `blocked` and `busy` if missing; repair a lost tag.

        A client's PROPPATCH can drop a calendar's `tag` (RADICALE.md "Traps"); the server
        refuses that, and this puts it back should it ever happen anyway.
        """
        with self._locked("w"):
            self._storage.create_collection(self._path())
            for name, displayname in (
                (layout.APPOINTMENTS, layout.APPOINTMENTS_DISPLAYNAME),
                (layout.BLOCKED, layout.BLOCKED_DISPLAYNAME),
                (layout.BUSY, layout.BUSY_DISPLAYNAME),
            ):
                found = self._find(name)
                if found is None:
                    self._storage.create_collection(self._path(name), props=_calendar_props(displayname))
                elif found.get_meta("tag") != "VCALENDAR":
                    repaired = {**_calendar_props(displayname), **found.get_meta(), "tag": "VCALENDAR"}
                    found.set_meta(repaired)

    # --- mirrors --------------------------------------------------------------------------

    def _mirror(self, slug: str) -> str:
        if not layout.is_valid_slug(slug):
            raise StoreError(f"unusable mirror name {slug!r}")
        return layout.mirror_name(slug)

    def ensure_mirror(self, slug: str, displayname: str, color: str | None) -> None:
        """Create the mirror if missing, else bring its name and colour up to date.

        `displayname` is the iCloud calendar's name; it is shown as "iCloud · <name>".
        """
        name = self._mirror(slug)
        with self._locked("r"):  # every mirror pass asks; the exclusive lock only for a change
            found = self._find(name)
            if found is not None and self._mirror_meta(found, displayname, color) is None:
                return
        with self._locked("w"):
            found = self._find(name)
            if found is None:
                self._storage.create_collection(
                    self._path(name), props=_calendar_props(mirror_displayname(displayname), color)
                )
            else:
                self._set_mirror_meta(found, displayname, color)

    def update_mirror_meta(self, slug: str, displayname: str, color: str | None) -> None:
        name = self._mirror(slug)
        with self._locked("w"):
            self._set_mirror_meta(self._require(name), displayname, color)

    @staticmethod
    def _mirror_meta(
        collection: multifilesystem.Collection, displayname: str, color: str | None
    ) -> dict[str, str] | None:
        """The mirror's properties with this name and colour; None when they are so already."""
        meta = dict(collection.get_meta())
        wanted = {**meta, **_calendar_props(mirror_displayname(displayname), color)}
        if not color:
            wanted.pop("ICAL:calendar-color", None)
        return None if wanted == meta else wanted

    def _set_mirror_meta(self, collection: multifilesystem.Collection, displayname: str, color: str | None) -> None:
        wanted = self._mirror_meta(collection, displayname, color)
        if wanted is not None:
            collection.set_meta(wanted)

    def delete_mirror(self, slug: str) -> None:
        """Remove the mirror and its caches; nothing happens if it does not exist."""
        name = self._mirror(slug)
        with self._locked("w"):
            found = self._find(name)
            if found is not None:
                found.delete()
            shutil.rmtree(self._cache_dir(name), ignore_errors=True)

    def list_mirrors(self) -> list[str]:
        with self._locked("r"):
            children = list(self._storage.discover(self._path(), depth="1"))
        names = [
            child.path.rsplit("/", 1)[-1] for child in children if isinstance(child, radicale.storage.BaseCollection)
        ]
        return sorted(slug for slug in map(layout.slug_of, names) if slug is not None)

    def mirror_hrefs(self, slug: str) -> dict[str, str]:
        return self.etags(self._mirror(slug))

    def mirror_item_names(self, slug: str) -> set[str]:
        """The hrefs of the mirror's items from its folder listing alone (no item is read)."""
        return self._item_names(self._mirror(slug))

    def busy_item_names(self) -> set[str]:
        """The hrefs in `busy/`, from its folder listing alone."""
        return self._item_names(layout.BUSY)

    def _item_names(self, name: str) -> set[str]:
        with self._locked("r", lane=name):
            self._require(name)
            with os.scandir(self.collection_dir(name)) as entries:
                return {
                    entry.name
                    for entry in entries
                    if entry.is_file() and pathutils.is_safe_filesystem_path_component(entry.name)
                }

    def apply_mirror(
        self, slug: str, upserts: Sequence[tuple[str, str]], deletes: Sequence[str]
    ) -> list[tuple[str, str]]:
        """Check and apply one batch; returns the refused items with reasons."""
        return self.write_checked(slug, self.check(upserts), deletes)

    def check(self, upserts: Sequence[tuple[str, str]]) -> list[tuple[str, PreparedItem | str]]:
        """Check objects for a mirror without taking the lock (the slow, CPU-bound part;
        big batches in worker processes)."""
        return check_many(upserts, self._limits)

    @contextmanager
    def mirror_writer(self, slug: str, expected: int) -> Iterator[BatchWriter]:
        """The writer of one mirror pass of about `expected` objects: batches are checked
        (in worker processes when that pays) and written behind the caller's next fetch."""
        self._mirror(slug)
        pool = pool_for(expected, self._limits)
        writer = BatchWriter(self, slug, pool)
        try:
            yield writer
        finally:
            writer.close()
            if pool is not None:
                pool.close()

    @property
    def limits(self) -> Limits:
        return self._limits

    def write_checked(
        self, slug: str, checked: Sequence[tuple[str, PreparedItem | str]], deletes: Sequence[str]
    ) -> list[tuple[str, str]]:
        """Apply one checked batch under one write lock; returns the refused items with reasons.

        An object that failed its check, or whose UID another item of the mirror keeps, is
        skipped and reported; the rest of the batch is applied. The cost is proportional
        to the batch, not to the mirror.
        """
        return self._write_checked(self._mirror(slug), checked, deletes)

    def apply_busy(self, upserts: Sequence[tuple[str, str]], deletes: Sequence[str]) -> list[tuple[str, str]]:
        """Apply one change to `busy/` (calmirror's own read-only calendar, written like a
        mirror, in time proportional to the change); returns the refused items with reasons."""
        return self._write_checked(layout.BUSY, self.check(upserts), deletes)

    def _write_checked(
        self, name: str, checked: Sequence[tuple[str, PreparedItem | str]], deletes: Sequence[str]
    ) -> list[tuple[str, str]]:
        rejected = [(href, result) for href, result in checked if isinstance(result, str)]
        valid = [result for _, result in checked if isinstance(result, PreparedItem)]
        with self._locked("w", lane=name):
            collection = self._require(name)
            folder, log = self.collection_dir(name), self._cache_dir(name) / uid_index.LOG_NAME

            def read_all() -> list[tuple[str, str]]:
                return [(item.href, item.uid) for item in collection.get_all() if item.href]

            uids = self._uids.current(name, folder, log, read_all)
            try:
                plan = batch.plan_batch(uids.uid_of, uids.owner_of, valid, deletes)
            except uid_index.StaleUids:  # a shard log that no longer reads as stamped
                self._uids.forget(name, log)
                uids = self._uids.current(name, folder, log, read_all)
                plan = batch.plan_batch(uids.uid_of, uids.owner_of, valid, deletes)
            written = {item.href for item in plan.upserts}
            removed = [href for href in plan.deletes if href not in written]
            try:
                bulk.write_items(self._storage, collection.path, plan.upserts, removed)
            except (OSError, ValueError, RuntimeError) as error:
                self._uids.forget(name, log)
                raise StoreError(f"cannot write the local calendar {name!r}: {error}") from error
            self._uids.written(name, folder, log, {item.href: item.uid for item in plan.upserts}, removed)
        return rejected + plan.rejected

    # --- appointments changed in iCloud -------------------------------------------------

    def write_appointment(self, href: str, text: str) -> None:
        """Store iCloud's change to a pushed appointment in `appointments/`, through the
        storage API: not over HTTP, so no client write hook runs, and clients see it at their
        next sync. The text is stored byte for byte (the caller records its hash first, so the
        change detector finds nothing to push)."""
        checked = prepare_one(href, text, self._limits)
        if isinstance(checked, str):
            raise StoreError(f"cannot store {layout.APPOINTMENTS}/{href}: {checked}")
        with self._locked("w", lane=layout.APPOINTMENTS):
            collection = self._require(layout.APPOINTMENTS)
            try:
                bulk.write_items(self._storage, collection.path, [checked], [])
            except (OSError, ValueError, RuntimeError) as error:
                raise StoreError(f"cannot write {layout.APPOINTMENTS}/{href}: {error}") from error

    # --- reading any collection -----------------------------------------------------------

    def items(self, name: str) -> dict[str, str]:
        with self._locked("r", lane=name):
            return {item.href: item.serialize() for item in self._require(name).get_all() if item.href}

    def item(self, name: str, href: str) -> str | None:
        if not pathutils.is_safe_filesystem_path_component(href):
            return None
        with unlocked_reads(), self._locked("r"):  # whole files only: see `listing`
            for _, found in self._require(name).get_multi([href]):
                return found.serialize() if found is not None else None
        return None

    def items_named(self, name: str, hrefs: Sequence[str]) -> dict[str, str | None]:
        """The text of each of `hrefs` (None for one that is not there), under one lock."""
        safe = [href for href in dict.fromkeys(hrefs) if pathutils.is_safe_filesystem_path_component(href)]
        found: dict[str, str | None] = dict.fromkeys(hrefs)
        with unlocked_reads(), self._locked("r"):  # whole files only: see `listing`
            for href, item in self._require(name).get_multi(safe):
                found[href] = item.serialize() if item is not None else None
        return found

    def etags(self, name: str) -> dict[str, str]:
        with self._locked("r", lane=name):
            return {item.href: item.etag for item in self._require(name).get_all() if item.href}

    def changes(self, name: str, token: str | None) -> ChangeSet:
        """Hrefs changed, added or deleted since `token`: from the folder's listing when the
        token names a snapshot of this process (`listing`, without the store lock: a reader
        of appointments/ no longer queues behind clients' writes), else through Radicale's sync."""
        folder = str(self.collection_dir(name))
        found = listing.since(folder, token)  # no store lock: see `listing`
        if found is not None:
            return ChangeSet(found[0], found[1], full=False)
        with self._locked("r", lane=name):
            collection = self._require(name)
            radicale_token, _ = listing.split(token)
            if radicale_token:
                try:
                    new_token, changed = collection.sync(radicale_token)
                    return ChangeSet(listing.remember(folder, new_token), list(changed), full=False)
                except ValueError:
                    pass
            new_token, _ = collection.sync("")
            present = sorted(item.href for item in collection.get_all() if item.href)
            return ChangeSet(listing.remember(folder, new_token), present, full=True)
