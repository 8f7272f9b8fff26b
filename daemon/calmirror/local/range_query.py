"""Time-range queries on mirrors from an index, with Radicale's answers by construction.

A calendar-query REPORT (and Radicale's own free-busy) asks the collection's
`get_filtered(filters)`. Radicale's answer loads every item (a file read, a hash and an
unpickle each: 0.6 s at 10,000 events), keeps those whose cached `time_range` overlaps the
window, and then parses every kept item whose range is not inside the window (every
recurring series that spans it) to run the full filter: 8 s for a week of the 10,000-event
benchmark corpus, of which 1,250 series. Here a mirror's `get_filtered` is answered from an
index (`RangeStore`, SQLite in `state/ranges.py`) holding, per item file, Radicale's own
cached range and, once a query has needed it, the occurrences Radicale's own filter visits:

- **The index is checked on every query.** One `os.scandir` of the folder gives each item
  file's stamp (inode, size, mtime and ctime in ns); any file whose stamp differs from its
  row, or that has no row, is read through Radicale's item cache (`_get`, Radicale's own
  cache entry, checked against the file's content hash) and its row rewritten; rows for
  files that are gone are dropped. So a crash between an item and its row, a row for a
  deleted item or a file restored from a backup changes no answer. A stamp read within
  `RACY_NS` of the file's last change is not trusted (two rewrites in one clock tick can
  keep it) and is checked again at the next query. A client's query of a mirror takes no
  store lock (`store_lock.unlocked_reads`): a file replaced between its `stat` and its read
  is recorded with the older stamp, so the next query reads it again. When the folder's own
  stamp (inode, mtime, ctime) is the one seen at the last check, and was settled then, no
  file was added, removed or renamed into place since (calmirror writes mirrors only that
  way), and that check's listing is used again instead of a `stat` per item.
- **Candidates** are the rows whose range overlaps the window, and for the component the
  filter names: Radicale's prefilter exactly. They are loaded through the same `_get` and
  yielded in the folder's order with the flag Radicale's `get_filtered` would give, after
  re-checking the prefilter on the loaded item itself. Radicale then runs the rest of the
  filter, builds the answer, expands: the same hrefs and bodies.
- **Occurrences.** For the commonest shape, `VCALENDAR > VEVENT > time-range`, Radicale's
  full filter is `time_range_match`, which walks `visit_time_ranges` (overrides first,
  then the series in order) until an occurrence overlaps or the series starts past the
  window. The first query that needs it records that walk for the item version (its etag),
  over a window around now, by calling `visit_time_ranges` on the item's own parse (`range_walk`); later
  windows inside the recorded span are decided in SQL (`EXISTS` an occurrence that
  overlaps), which equals Radicale's walk when the series' starts come in order (checked
  while recording; otherwise, or on any error, Radicale decides that item). An item that
  matches is yielded as "filters matched", which is what its full filter would say.
- Anything else (no time-range, a VTODO filter, text-match, prop-filters, `expand`, which
  removes the time-range before asking) either narrows by the cached range only, with
  Radicale's own flag, or goes to Radicale's `get_filtered` unchanged; so does any failure
  of the index (logged).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from radicale import config as radicale_config
from radicale import item as radicale_item
from radicale import pathutils
from radicale.item import filter as radicale_filter

from calmirror.local import layout, vobject_speed
from calmirror.local.range_walk import plain_event_window, record_occurrences
from calmirror.local.storage import size_ok
from calmirror.local.store_lock import unlocked_reads
from calmirror.local.uid_cache import UidCachedCollection, UidCachedStorage
from calmirror.model import FileStamp, ItemRange, Occurrences, RangeCandidate

vobject_speed.install()  # before Radicale parses an object

log = logging.getLogger("calmirror.local")

#: A stamp is trusted once the file's last change is this far in the past (nanoseconds).
RACY_NS = 2_000_000_000
#: Occurrences are recorded this far around now (and around the window that asked), seconds.
SPAN_S = 400 * 86_400
#: Warming records items whose cached range is longer than this (a window of a week or less
#: needs the occurrences only of an item that spans it), this many per turn of the lock.
WARM_LONGER_THAN_S = 7 * 86_400
WARM_TURN = 50

_NEVER = (radicale_filter.TIMESTAMP_MAX, radicale_filter.TIMESTAMP_MIN)  # a range no window overlaps


class RangeStore(Protocol):
    """What the query path needs from the index (implemented by `state.ranges.RangeIndex`)."""

    rows_version: int  # a new number (unique in the process) whenever item rows change

    def stamps(self, collection: str) -> dict[str, tuple[FileStamp, bool]]: ...

    def update(self, collection: str, items: Sequence[ItemRange], gone: Sequence[str]) -> None: ...

    def candidates(self, collection: str, component: str | None, start: int, end: int) -> list[RangeCandidate]: ...

    def unrecorded(self, collection: str, longer_than: int, low: int, high: int) -> list[str]: ...

    def record(self, collection: str, href: str, occurrences: Occurrences) -> None: ...


Found = tuple[radicale_item.Item, bool]


class IndexedCollection(UidCachedCollection):
    """Radicale's collection with `get_filtered` answered from the index for mirrors."""

    def get_filtered(self, filters: Iterable[ET.Element]) -> Iterable[Found]:
        filters = list(filters)
        index: RangeStore | None = getattr(self._storage, "range_store", None)
        name = self.path.rsplit("/", 1)[-1]
        if index is None or self.tag != "VCALENDAR" or not layout.is_mirror(name):
            yield from super().get_filtered(filters)
            return
        component, start, end, simple = radicale_filter.simplify_prefilters(filters, self.tag)
        if start <= radicale_filter.TIMESTAMP_MIN and end >= radicale_filter.TIMESTAMP_MAX:
            yield from super().get_filtered(filters)  # no window to narrow by (`expand` removes it)
            return
        try:
            found = self._from_index(index, name, component, start, end, simple, plain_event_window(filters))
        except Exception:
            log.warning("the time-range index of %s failed; Radicale answers this query", name, exc_info=True)
            found = None
        if found is None:
            yield from super().get_filtered(filters)
            return
        yield from found

    def _from_index(
        self,
        index: RangeStore,
        name: str,
        component: str | None,
        start: int,
        end: int,
        simple: bool,
        plain_event: bool,
    ) -> list[Found]:
        order, listing = self._validate(index, name)
        candidates = {c.href: c for c in index.candidates(name, component, start, end)}
        found: list[Found] = []
        for href in order:
            candidate = candidates.get(href)
            if candidate is None:
                continue
            item = self._load(href, listing.get(href), shared=True)
            if item is None or (component is not None and component != item.component_name):
                continue
            item_start, item_end = item.time_range
            if item_start >= end or item_end <= start:
                continue
            matched = simple and (start <= item_start or item_end <= end)  # Radicale's own flag
            if matched:  # read as it is, never parsed: the kept item itself
                found.append((item, True))
                continue
            item = copy.copy(item)  # a filter (or `_record`) attaches its parse to it
            if not plain_event or item.name != "VCALENDAR":  # the last: Radicale's level-0 test
                found.append((item, False))
                continue
            decided = candidate.decided
            if decided is None:
                decided = self._record(index, name, item, start, end)
            if decided is None:
                found.append((item, False))  # Radicale's full filter decides
            elif decided:
                found.append((item, True))
        return found

    def _load(self, href: str, stamp: FileStamp | None = None, *, shared: bool = False) -> radicale_item.Item | None:
        """An item exactly as Radicale's `get_all` would give it (None where it skips it).

        With the file's settled `stamp` from the folder's listing, the item read for that
        stamp last time is used again: a copy, as a filter may attach its parse to it, or with
        `shared` the kept item itself, for a caller that only reads what it already holds
        (its text, ETag, time range). Copying was a sixth of a one-week query's time. Mirror
        files change only by a new file renamed into place, which is a new stamp."""
        key = (self._filesystem_path, href)
        if stamp is not None:
            with _items_lock:
                kept = _items.get(key)
                if kept is not None and kept[0] == stamp:
                    _items.move_to_end(key)
                    return kept[1] if shared else copy.copy(kept[1])
        item = self._get(href, verify_href=False)
        path = str(Path(self._filesystem_path) / href)
        if item is None or not size_ok(path, self._storage._max_resource_size):
            return None
        if stamp is not None and max(stamp[2], stamp[3]) < time.time_ns() - RACY_NS:
            with _items_lock:
                _items[key] = (stamp, copy.copy(item))
                _items.move_to_end(key)
                while len(_items) > ITEMS_KEPT:
                    _items.popitem(last=False)
        return item

    def _validate(self, index: RangeStore, name: str) -> _Listing:
        """Bring the index in line with the folder; returns the item names in the folder's
        order and their stamps. Nothing to check while the folder's listing is the one whose
        every row was found current (and settled) last time, for the same index."""
        order, listing = found = _listing(self._filesystem_path)
        checked = _validated.get(self._filesystem_path)
        if checked is not None and checked[0] == index.rows_version and checked[1] is found:
            return found
        known = index.stamps(name)
        settled = time.time_ns() - RACY_NS
        changed: list[ItemRange] = []
        for href in order:
            stamp = listing[href]
            row = known.get(href)
            if row is not None and row[1] and row[0] == stamp:
                continue
            trusted = max(stamp[2], stamp[3]) < settled
            item = self._load(href)
            if item is None:
                changed.append(ItemRange(href, stamp, trusted, "", "", *_NEVER))
            else:
                changed.append(ItemRange(href, stamp, trusted, item.etag, item.component_name, *item.time_range))
        gone = [href for href in known if href not in listing]
        index.update(name, changed, gone)
        kept = _listings.get(self._filesystem_path)
        if all(item.trusted for item in changed) and kept is not None and kept[1] is found:
            _validated[self._filesystem_path] = (index.rows_version, found)
        else:
            _validated.pop(self._filesystem_path, None)
        return found

    def _record(self, index: RangeStore, name: str, item: radicale_item.Item, start: int, end: int) -> bool | None:
        """Record the item's occurrences around now and the window; what they say about it."""
        low, high = _span()
        low, high = min(start, low), max(end, high)
        occurrences = record_occurrences(copy.copy(item), low, high)
        if occurrences is None:
            return None
        assert item.href is not None
        index.record(name, item.href, occurrences)
        if not occurrences.exact:
            return None
        return any(s < end and start < e for s, e in occurrences.ranges)


_Listing = tuple[list[str], dict[str, FileStamp]]
_listings: dict[str, tuple[tuple[int, int, int], _Listing]] = {}  # folder -> its settled stamp, listing
#: folder -> the index's `rows_version` when every row was found current, and that (kept) listing
_validated: dict[str, tuple[int, _Listing]] = {}
#: Items read for a query, per (folder, href) with the settled file stamp they were read at.
ITEMS_KEPT = 3_000
_items: OrderedDict[tuple[str, str], tuple[FileStamp, radicale_item.Item]] = OrderedDict()
_items_lock = threading.Lock()


def _listing(folder: str) -> _Listing:
    """The item files in Radicale's `_list` order with their stamps; the last listing again
    while the folder's own settled stamp has not moved (see the module docstring)."""
    try:
        found = Path(folder).stat()
    except FileNotFoundError:
        found = None
    stamp = None if found is None else (found.st_ino, found.st_mtime_ns, found.st_ctime_ns)
    kept = _listings.get(folder)
    if stamp is not None and kept is not None and kept[0] == stamp:
        return kept[1]
    order: list[str] = []
    listing: dict[str, FileStamp] = {}
    with os.scandir(folder) as entries:
        for entry in entries:  # what Radicale's `_list` yields, in the same order
            if entry.is_file() and pathutils.is_safe_filesystem_path_component(entry.name):
                try:
                    item = entry.stat()
                except FileNotFoundError:  # deleted by a mirror batch meanwhile (no store lock)
                    continue
                order.append(entry.name)
                listing[entry.name] = (item.st_ino, item.st_size, item.st_mtime_ns, item.st_ctime_ns)
    result = (order, listing)
    if stamp is not None and max(stamp[1], stamp[2]) < time.time_ns() - RACY_NS:
        _listings[folder] = (stamp, result)
    else:
        _listings.pop(folder, None)
    return result


def _span() -> tuple[int, int]:
    now = int(time.time())
    return now - SPAN_S, now + SPAN_S


def warm(
    storage: IndexedStorage, path: str, before_reading: Callable[[], None], should_stop: Callable[[], bool]
) -> int:
    """Bring one mirror's index up to date and record the occurrences of its series around
    now, so a client's first query after a mirror pass does not pay for them; returns how
    many items were recorded. It takes no store lock, like a client's query of a mirror: the
    first check of a 100,000-event mirror reads every item (over a minute), and a shared lock
    held that long kept every client PUT waiting. It goes in turns of `WARM_TURN` items
    (`before_reading` is the server's writers-first gate);
    an item changed between turns is recorded for the version read, which no query of a
    newer version uses (occurrences are kept per etag)."""
    with unlocked_reads():  # a mirror, read as a client's query reads it: see the module docstring
        return _warm(storage, path, before_reading, should_stop)


def _warm(
    storage: IndexedStorage, path: str, before_reading: Callable[[], None], should_stop: Callable[[], bool]
) -> int:
    index = storage.range_store
    name = path.rstrip("/").rsplit("/", 1)[-1]
    low, high = _span()
    before_reading()
    with storage.acquire_lock("r", "calmirror"):
        collection = next(iter(storage.discover(path)), None)
        if collection is None:
            index.update(name, [], list(index.stamps(name)))  # the mirror is gone: so are its rows
            return 0
        if not isinstance(collection, IndexedCollection) or collection.tag != "VCALENDAR":
            return 0
        collection._validate(index, name)
        todo = index.unrecorded(name, WARM_LONGER_THAN_S, low, high)
    recorded = 0
    for first in range(0, len(todo), WARM_TURN):
        if should_stop():
            break
        before_reading()
        with storage.acquire_lock("r", "calmirror"):
            collection = next(iter(storage.discover(path)), None)
            if not isinstance(collection, IndexedCollection):
                break
            for href in todo[first : first + WARM_TURN]:
                item = collection._load(href)
                occurrences = None if item is None else record_occurrences(copy.copy(item), low, high)
                if occurrences is not None:
                    index.record(name, href, occurrences)
                    recorded += 1
    return recorded


class IndexedStorage(UidCachedStorage):
    """Radicale's multifilesystem storage whose collections answer mirror queries from `range_store`."""

    _collection_class = IndexedCollection

    def __init__(self, configuration: radicale_config.Configuration, range_store: RangeStore) -> None:
        super().__init__(configuration)
        self.range_store = range_store


def storage_type(range_store: RangeStore) -> Callable[[radicale_config.Configuration], Any]:
    """A `[storage] type` value for Radicale's configuration (it calls a callable type)."""
    return lambda configuration: IndexedStorage(configuration, range_store)
