"""Writing mirror items straight into Radicale's folders, in time proportional to the change.

Radicale's per-item `upload()` is O(n) in the collection (it rescans the sync history on
every call: 15 ms per item at 3,000 items here), and its `create_collection(items=...)`
chooses item names from UIDs and, with the cache subfolders on, writes the item cache
under the temporary folder's name, so the first read re-parses everything (23 s for
10,000 events). This module writes what Radicale itself would: the item file, its item
cache entry, and for a never-seen href the first sync-history entry, keeping the
caller's hrefs.

Durability without an fsync per file (160 µs each here, 5 s for 30,000 files): every file
is first written into a scratch folder, one `syncfs` makes them all durable, and only then
are they renamed into place, cache and history first, the item file last. A crash
therefore never leaves a half-written cache or history entry where Radicale reads it (it
does not survive an empty pickle), and an item file never appears before its cache entry.
A crash between renames leaves some of the batch applied: the caller keeps its own record
(the mirror map, the sync token) until the batch is done, so the next pass repeats it.

Scratch folders use a prefix of our own: Radicale removes `.Radicale.tmp-*` folders it
finds, and would pull one from under a writer.

Relies on Radicale 3.9's multifilesystem layout (pinned in pyproject); the integration
tests read every collection written here back through Radicale, over HTTP too.
"""

from __future__ import annotations

import binascii
import contextlib
import ctypes
import functools
import os
import pickle
import shutil
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from radicale import item as radicale_item
from radicale import pathutils
from radicale.storage import multifilesystem

from calmirror.local.items import PreparedItem

_CACHE = ".Radicale.cache"
SCRATCH_PREFIX = ".calmirror-scratch-"
SCRATCH_DIR = ".calmirror-scratch"


def write_items(
    storage: multifilesystem.Storage,
    collection_path: str,
    upserts: Sequence[PreparedItem],
    deletes: Sequence[str],
) -> None:
    """Make the items of `collection_path` (stripped, `user/name`) reflect the change.

    The caller holds the storage write lock, has checked every href, and deletes nothing
    it also upserts. Sync history of hrefs that already have one is left to Radicale,
    which then reports exactly the changed, new and removed hrefs to clients holding a
    token.
    """
    if storage._use_mtime_and_size_for_item_cache:
        raise RuntimeError("direct writes need the content-hash item cache")
    root = storage._get_collection_root_folder()
    folder = pathutils.path_to_filesystem(root, collection_path, storage._is_collision_free)
    cache_folder = storage._get_collection_cache_subfolder(folder, _CACHE, "item")
    history_folder = storage._get_collection_cache_subfolder(folder, _CACHE, "history")
    cleaned = _cleaned.setdefault(storage, set())
    for path in (folder, cache_folder, history_folder):
        storage._makedirs_synced(path)  # every time: a mirror removed and added again lost its cache folders
        if path not in cleaned:
            _remove_leftover_scratch(path)
            cleaned.add(path)
    encoding: str = storage.configuration.get("encoding", "stock")
    if upserts:
        with (
            _scratch(folder) as scratch_items,
            _scratch(cache_folder) as scratch_cache,
            _scratch(history_folder) as scratch_history,
        ):
            # Creating a file costs ~0.4 ms of kernel time here, three per item: the three
            # kinds are written side by side, which uses a second core while there is one.
            texts = _pool().submit(_write_texts, scratch_items, upserts, encoding)
            caches = _pool().submit(_write_caches, scratch_cache, upserts, encoding)
            try:
                seeded = _stage_missing_history(history_folder, scratch_history, upserts)
            finally:
                wait([texts, caches])  # nothing may still write into a scratch folder once it is cleared
            texts.result()
            caches.result()
            flush_filesystem(folder)
            hrefs = [prepared.href for prepared in upserts]
            _move_all(scratch_cache, cache_folder, hrefs)
            _move_all(scratch_history, history_folder, seeded)
            _move_all(scratch_items, folder, hrefs)
    for href in deletes:
        for path in (folder, cache_folder):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, href))
    for path in (folder, cache_folder, history_folder):
        storage._sync_directory(path)


#: Folders each open store has cleared of a crashed writer's scratch folders (once is enough:
#: only a writer that died leaves them, and scanning a big folder per batch costs O(n)).
_cleaned: weakref.WeakKeyDictionary[multifilesystem.Storage, set[str]] = weakref.WeakKeyDictionary()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="calmirror-files")


def _write_texts(folder: str, items: Sequence[PreparedItem], encoding: str) -> None:
    for prepared in items:
        _write_bytes(os.path.join(folder, prepared.href), prepared.text.encode(encoding))


def _write_caches(folder: str, items: Sequence[PreparedItem], encoding: str) -> None:
    for prepared in items:
        _write_bytes(
            os.path.join(folder, prepared.href),
            pickle.dumps(_cache_entry(prepared, encoding), protocol=pickle.HIGHEST_PROTOCOL),
        )


def _write_bytes(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@contextlib.contextmanager
def _scratch(folder: str) -> Iterator[str]:
    """A scratch folder inside one dot-named folder beside the real files (Radicale skips
    dot-names), on the same file system so the renames into place are atomic.

    The same folder serves every batch: a batch that succeeds renames every file out of it,
    and making and removing three folders per batch was a tenth of the writer's time at
    100,000 events. A batch that fails leaves files behind, so its folder is removed (and
    made again by the next batch)."""
    path = os.path.join(folder, SCRATCH_DIR, SCRATCH_PREFIX + "batch")
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _remove_leftover_scratch(folder: str) -> None:
    """Scratch folders a crash left behind. Only this module writes them, always under
    the exclusive store lock the caller holds, so none here can be in use. They are all in
    one folder, so finding them does not list a collection of 100,000 items."""
    shutil.rmtree(os.path.join(folder, SCRATCH_DIR), ignore_errors=True)


def _cache_entry(prepared: PreparedItem, encoding: str) -> tuple[object, ...]:
    """Radicale's item-cache record: content hash, then `CacheContent` in field order."""
    cache_hash = multifilesystem.Collection._item_cache_hash(prepared.text.encode(encoding))
    return (
        cache_hash,
        prepared.uid,
        prepared.etag,
        prepared.text,
        prepared.name,
        prepared.component_name,
        *prepared.time_range,
    )


def _stage_missing_history(history_folder: str, staged: str, items: Sequence[PreparedItem]) -> list[str]:
    """Seed the history of never-seen hrefs, as Radicale's first sync would.

    Without it a client's first sync-collection after a 10,000-event fill writes 10,000
    history files with an fsync each (8 s here).
    """
    seeded = []
    for prepared in items:
        if os.path.lexists(os.path.join(history_folder, prepared.href)):
            continue
        seed = binascii.hexlify(os.urandom(16)).decode("ascii")
        history_etag = radicale_item.get_etag(seed + "/" + prepared.etag).strip('"')
        _write_bytes(
            os.path.join(staged, prepared.href),
            pickle.dumps([prepared.etag, history_etag], protocol=pickle.HIGHEST_PROTOCOL),
        )
        seeded.append(prepared.href)
    return seeded


def _move_all(source: str, destination: str, names: Sequence[str]) -> None:
    for name in names:
        os.replace(os.path.join(source, name), os.path.join(destination, name))


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    except OSError:
        return None


def flush_filesystem(path: str) -> None:
    """Make everything written so far on `path`'s file system durable, in one call.

    `syncfs(2)` where the C library has it (Linux); `sync(2)` elsewhere.
    """
    syncfs = _syncfs()
    if syncfs is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()
