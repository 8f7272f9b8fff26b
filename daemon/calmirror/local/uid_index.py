"""Which UID each item of a mirror holds, kept in memory and in logs beside Radicale's cache.

A batch must not give a UID to a second item (Radicale would then answer neither), so
each batch needs to know who holds its UIDs. Reading them from Radicale costs a file read
per item: a fresh process changing one event of a 100,000-event mirror spent 27 s there.
Mirrors are written only by `LocalStore` (clients are refused), so the index stays right
as long as a calmirror process wrote last.

The index lives in a folder beside the collection's cache: `SHARDS` logs of href -> UID and
`SHARDS` of UID -> href (each key in the shard its CRC-32 names), and a tail. Each write
appends one record to the tail: its changes, the collection folder's inode and modification
time (nanoseconds) after it, and every shard log's length. Once the tail holds `TAIL_MAX`
changes they are appended to their shards and the tail is written again as one record. A
process that starts later reads the tail and only the shards its batch's hrefs and UIDs fall
in (a one-change pass at 100,000 items read all 8 MB of one log before, about 0.1 s); any
difference from the folder's stamp or a shard's length (a crash between the files and the
logs, another program, a restored backup, a swapped folder) means reading the UIDs from the
items again. A shard log is rewritten whole once it holds twice as many changes as entries.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOG_NAME = "calmirror-uids"  # the single log of earlier versions; the index lives in LOG_NAME + ".d"
SHARDS = 16
TAIL_MAX = 5_000  # changes kept in the tail before they go to their shards
_TAIL = "tail"
_MIN_COMPACT = 1_000
_UNREADABLE = (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError)

Stamp = tuple[int, int]
Changes = dict[str, str | None]  # key -> new value, None: removed


def shard_of(key: str) -> int:
    """Stable across processes (`hash` is not)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % SHARDS


def _stamp(folder: Path) -> Stamp:
    found = folder.stat()
    return found.st_ino, found.st_mtime_ns


def _shard_dir(log: Path) -> Path:
    return log.with_name(log.name + ".d")


class StaleUids(Exception):
    """A shard log no longer reads as the tail says: the caller forgets the index and asks
    again (the UIDs are then read from the items)."""


@dataclass
class _Shard:
    """One shard's entries in memory: key -> value (a removed key is absent)."""

    entries: dict[str, str]
    appended: int = 0  # changes in its log since it was last written whole


def _apply(entries: dict[str, str], changes: Changes) -> None:
    for key, value in changes.items():
        if value is None:
            entries.pop(key, None)
        else:
            entries[key] = value


def _records(data: bytes) -> Iterator[object]:
    source = io.BytesIO(data)
    while source.tell() < len(data):
        yield pickle.load(source)


class _Family(Mapping[str, str]):
    """One side of the index (href -> UID or UID -> href): a mapping that reads a shard's log
    the first time one of its keys is asked for, with the tail's changes on top."""

    def __init__(self, prefix: str, folder: Path | None, lengths: dict[str, int], tail: Changes) -> None:
        self.prefix = prefix
        self.folder = folder  # None: nothing on disk yet (every shard starts empty)
        self.lengths = lengths  # shared with the index: the shard logs' lengths on disk
        self.tail = tail  # changes not yet in the shard logs, newest state per key
        self.shards: dict[int, _Shard] = {}

    def name(self, index: int) -> str:
        return f"{self.prefix}{index:02d}"

    def shard(self, index: int) -> _Shard:
        found = self.shards.get(index)
        if found is None:
            try:
                found = self._read(index)
            except _UNREADABLE as error:
                raise StaleUids(f"{self.name(index)}: {error}") from error
            _apply(found.entries, {k: v for k, v in self.tail.items() if shard_of(k) == index})
            self.shards[index] = found
        return found

    def _read(self, index: int) -> _Shard:
        name = self.name(index)
        expected = self.lengths.get(name, 0)
        if self.folder is None or expected == 0:
            return _Shard({})
        data = (self.folder / name).read_bytes()
        if len(data) != expected:
            raise ValueError(f"{len(data)} bytes where the tail says {expected}")
        entries: dict[str, str] = {}
        appended = 0
        for changes in _records(data):
            if not isinstance(changes, dict):
                raise TypeError("not a record")
            _apply(entries, changes)
            appended += len(changes)
        return _Shard(entries, appended)

    def __getitem__(self, key: str) -> str:
        return self.shard(shard_of(key)).entries[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.shard(shard_of(key)).entries

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self.shard(shard_of(key)).entries.get(key, default)

    def __iter__(self) -> Iterator[str]:
        for index in range(SHARDS):
            yield from self.shard(index).entries

    def __len__(self) -> int:
        return sum(len(self.shard(index).entries) for index in range(SHARDS))


@dataclass
class Uids:
    """href -> UID and UID -> one href holding it, for one collection."""

    stamp: Stamp
    folder: Path | None = None  # the index's folder, once written
    lengths: dict[str, int] = field(default_factory=dict)
    tail_h: Changes = field(default_factory=dict)
    tail_u: Changes = field(default_factory=dict)
    uid_of: _Family = field(init=False)
    owner_of: _Family = field(init=False)

    def __post_init__(self) -> None:
        self.uid_of = _Family("h", self.folder, self.lengths, self.tail_h)
        self.owner_of = _Family("u", self.folder, self.lengths, self.tail_u)

    @classmethod
    def of(cls, stamp: Stamp, pairs: Iterable[tuple[str, str]]) -> Uids:
        made = cls(stamp)
        made.apply(dict(pairs), ())
        return made

    def apply(self, upserts: dict[str, str], removed: Iterable[str]) -> tuple[Changes, Changes]:
        """Apply one write in memory; returns what changed on each side."""
        hrefs: Changes = {}
        owners: Changes = {}
        # Every href the write removes or replaces gives its UID up first: done per upsert, an
        # href taking over the UID of one rewritten after it in the same batch lost its claim.
        for href in [*removed, *upserts]:
            self._drop(href, hrefs, owners)
        for href, uid in upserts.items():
            self.uid_of.shard(shard_of(href)).entries[href] = uid
            hrefs[href] = uid
            held = self.owner_of.shard(shard_of(uid)).entries
            if uid not in held:
                held[uid] = href
                owners[uid] = href
        return hrefs, owners

    def _drop(self, href: str, hrefs: Changes, owners: Changes) -> None:
        uid = self.uid_of.shard(shard_of(href)).entries.pop(href, None)
        if uid is None:
            return
        hrefs[href] = None
        held = self.owner_of.shard(shard_of(uid)).entries
        if held.get(uid) == href:
            del held[uid]
            owners[uid] = None


class UidIndex:
    def __init__(self) -> None:
        self._entries: dict[str, Uids] = {}

    def current(self, name: str, folder: Path, log: Path, read_all: Callable[[], Iterable[tuple[str, str]]]) -> Uids:
        """The UIDs of every item of `name`; the caller holds the store lock and must call
        `written` or `forget` after changing the folder."""
        stamp = _stamp(folder)
        entry = self._entries.get(name)
        if entry is None or entry.stamp != stamp:
            entry = _open(log, stamp)
            if entry is None:
                entry = Uids.of(stamp, read_all())
                _rewrite(log, entry)
            self._entries[name] = entry
        return entry

    def written(self, name: str, folder: Path, log: Path, upserts: dict[str, str], removed: list[str]) -> None:
        """Record our own write, still under the lock: in memory, then on disk."""
        entry = self._entries[name]
        try:
            hrefs, owners = entry.apply(upserts, removed)
        except StaleUids:
            self.forget(name, log)  # a shard that no longer reads as stamped: read again next time
            return
        entry.stamp = _stamp(folder)
        try:
            _record(log, entry, hrefs, owners)
        except OSError:
            self.forget(name, log)

    def forget(self, name: str, log: Path) -> None:
        self._entries.pop(name, None)
        with contextlib.suppress(OSError):
            (_shard_dir(log) / _TAIL).unlink()
        with contextlib.suppress(OSError):
            log.unlink()


def _open(log: Path, stamp: Stamp) -> Uids | None:
    """The index its folder describes (shards read when asked), the single log of an earlier
    version turned into shards, or None when neither ends at `stamp`."""
    folder = _shard_dir(log)
    try:
        found = _read_tail(folder, stamp)
        if found is not None:
            return found
    except _UNREADABLE:
        pass
    old = _replay_single(log, stamp)
    if old is None:
        return None
    made = Uids.of(stamp, old.items())
    _rewrite(log, made)
    with contextlib.suppress(OSError):
        log.unlink()
    return made


def _read_tail(folder: Path, stamp: Stamp) -> Uids | None:
    tail_h: Changes = {}
    tail_u: Changes = {}
    at: tuple[int, int] | None = None
    lengths: dict[str, int] = {}
    for record in _records((folder / _TAIL).read_bytes()):
        if not isinstance(record, tuple) or len(record) != 4:
            raise TypeError("not a record")
        tail_h.update(record[0])
        tail_u.update(record[1])
        at, lengths = tuple(record[2]), record[3]
    if at != stamp or not isinstance(lengths, dict) or not _sizes_match(folder, lengths):
        return None
    return Uids(stamp, folder, lengths, tail_h, tail_u)


def _sizes_match(folder: Path, lengths: dict[str, int]) -> bool:
    """Every shard log as long as the tail says (a stat each, nothing read)."""
    for name, length in lengths.items():
        try:
            size = (folder / name).stat().st_size
        except FileNotFoundError:
            size = 0
        if size != length:
            return False
    return True


def _replay_single(log: Path, stamp: Stamp) -> dict[str, str] | None:
    """href -> UID from the single log of an earlier version, if it ends at `stamp`."""
    uid_of: dict[str, str] = {}
    at: tuple[int, int] = (0, 0)
    try:
        with log.open("rb") as source:
            while True:
                try:
                    upserts, removed, at = pickle.load(source)
                except EOFError:
                    break
                for href in removed:
                    uid_of.pop(href, None)
                uid_of.update(upserts)
    except _UNREADABLE:
        return None
    return uid_of if tuple(at) == stamp else None


def _record(log: Path, entry: Uids, hrefs: Changes, owners: Changes) -> None:
    """One write's changes appended to the tail, with the new stamp; a full tail goes to the
    shards first."""
    if entry.folder is None:
        _rewrite(log, entry)
        return
    entry.tail_h.update(hrefs)
    entry.tail_u.update(owners)
    if len(entry.tail_h) + len(entry.tail_u) > TAIL_MAX:
        _fold(entry.folder, entry)
        return
    with (entry.folder / _TAIL).open("ab") as sink:
        sink.write(pickle.dumps((hrefs, owners, entry.stamp, entry.lengths), protocol=pickle.HIGHEST_PROTOCOL))


def _fold(folder: Path, entry: Uids) -> None:
    """The tail's changes appended to their shards (a shard grown to twice its entries is
    written whole instead), then the tail written again, empty, with the new lengths."""
    for family in (entry.uid_of, entry.owner_of):
        by_shard: dict[int, Changes] = {}
        for key, value in family.tail.items():
            by_shard.setdefault(shard_of(key), {})[key] = value
        for index, part in by_shard.items():
            shard = family.shard(index)
            name = family.name(index)
            shard.appended += len(part)
            if shard.appended > max(_MIN_COMPACT, 2 * len(shard.entries)):
                entry.lengths[name] = _write_shard(folder / name, shard)
                continue
            data = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
            with (folder / name).open("ab") as sink:
                sink.write(data)
            entry.lengths[name] = entry.lengths.get(name, 0) + len(data)
        family.tail.clear()
    _write_tail(folder, entry)


def _write_tail(folder: Path, entry: Uids) -> None:
    scratch = folder / f".{_TAIL}.{os.getpid()}"
    with scratch.open("wb") as sink:
        sink.write(pickle.dumps(({}, {}, entry.stamp, entry.lengths), protocol=pickle.HIGHEST_PROTOCOL))
    scratch.replace(folder / _TAIL)


def _write_shard(path: Path, shard: _Shard) -> int:
    if not shard.entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        shard.appended = 0
        return 0
    data = pickle.dumps(shard.entries, protocol=pickle.HIGHEST_PROTOCOL)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_bytes(data)
    scratch.replace(path)
    shard.appended = len(shard.entries)
    return len(data)


def _rewrite(log: Path, entry: Uids) -> None:
    """Every shard written whole, then the tail (best effort: without a tail the next process
    reads the UIDs from the items)."""
    folder = _shard_dir(log)
    try:
        with contextlib.suppress(OSError):
            (folder / _TAIL).unlink()
        folder.mkdir(parents=True, exist_ok=True)
        for family in (entry.uid_of, entry.owner_of):
            for index in range(SHARDS):
                family.shard(index)  # every shard in memory before any is replaced
            for index in range(SHARDS):
                entry.lengths[family.name(index)] = _write_shard(folder / family.name(index), family.shard(index))
            family.tail.clear()
            family.folder = folder
        entry.folder = folder
        _write_tail(folder, entry)
    except OSError:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
