"""Which UID each item of a mirror holds, kept in memory and in shard logs beside Radicale's cache.

A batch must not give a UID to a second item (Radicale would then answer neither), so
each batch needs to know who holds its UIDs. Reading them from Radicale costs a file read
per item: a fresh process changing one event of a 100,000-event mirror spent 27 s there.
Mirrors are written only by `LocalStore` (clients are refused), so the index stays right
as long as a calmirror process wrote last.

The index lives in a folder beside the collection's cache: `SHARDS` logs of href -> UID and
`SHARDS` of UID -> href, each key in the shard its CRC-32 names, and a stamp file written
last after every write. The stamp names the collection folder's inode and modification time
(nanoseconds) and each shard log's length: a process that starts later reads only the shards
its batch's hrefs and UIDs fall in (a one-change pass at 100,000 items read all 8 MB of a
single log before, about 0.1 s), and any difference from the folder's stamp or a shard's
length (a crash between the files and the logs, another program, a restored backup, a
swapped folder) means reading the UIDs from the items again. A shard log is rewritten whole
once it holds twice as many changes as entries, so appending stays proportional to the batch
and reading a shard to its share of the collection.
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

LOG_NAME = "calmirror-uids"  # the single log of earlier versions; the shards live in LOG_NAME + ".d"
SHARDS = 16
_STAMP = "stamp"
_MIN_COMPACT = 1_000
_UNREADABLE = (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError)

Stamp = tuple[int, int]


def shard_of(key: str) -> int:
    """Stable across processes (`hash` is not)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % SHARDS


def _stamp(folder: Path) -> Stamp:
    found = folder.stat()
    return found.st_ino, found.st_mtime_ns


def _shard_dir(log: Path) -> Path:
    return log.with_name(log.name + ".d")


@dataclass
class _Shard:
    """One shard log's entries in memory: key -> value (a removed key is absent)."""

    entries: dict[str, str]
    length: int  # bytes of its log as last written or read
    appended: int  # changes in its log since it was last written whole


class _Family(Mapping[str, str]):
    """One side of the index (href -> UID or UID -> href): a mapping that reads a shard's log
    the first time one of its keys is asked for."""

    def __init__(self, folder: Path | None, prefix: str, lengths: dict[str, int]) -> None:
        self._folder = folder  # None: every shard is in memory already
        self._prefix = prefix
        self._lengths = lengths
        self.shards: dict[int, _Shard] = {}

    def attach(self, folder: Path, lengths: dict[str, int]) -> None:
        """From now on, shards not in memory are read from `folder`, `lengths` long."""
        self._folder = folder
        self._lengths = lengths

    def name(self, index: int) -> str:
        return f"{self._prefix}{index:02d}"

    def shard(self, index: int) -> _Shard:
        found = self.shards.get(index)
        if found is None:
            try:
                found = self._read(index)
            except _UNREADABLE as error:
                raise StaleUids(f"{self.name(index)}: {error}") from error
            self.shards[index] = found
        return found

    def _read(self, index: int) -> _Shard:
        name = self.name(index)
        expected = self._lengths.get(name, 0)
        if self._folder is None or expected == 0:
            return _Shard({}, 0, 0)
        entries: dict[str, str] = {}
        appended = 0
        with (self._folder / name).open("rb") as source:
            data = source.read()
        if len(data) != expected:
            raise ValueError(f"{name}: {len(data)} bytes where the stamp says {expected}")
        for changes in _records(data):
            for key, value in changes.items():
                if value is None:
                    entries.pop(key, None)
                else:
                    entries[key] = value
            appended += len(changes)
        return _Shard(entries, expected, appended)

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


def _records(data: bytes) -> Iterator[dict[str, str | None]]:
    source = io.BytesIO(data)
    while source.tell() < len(data):
        record = pickle.load(source)
        if not isinstance(record, dict):
            raise TypeError("not a record")
        yield record


class StaleUids(Exception):
    """A shard log no longer reads as its stamp says: the caller forgets the index and asks
    again (the UIDs are then read from the items)."""


@dataclass
class Uids:
    """href -> UID and UID -> one href holding it, for one collection."""

    stamp: Stamp
    uid_of: _Family
    owner_of: _Family
    folder: Path | None = None  # the shard folder these were read from or last written to
    lengths: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, stamp: Stamp, pairs: Iterable[tuple[str, str]]) -> Uids:
        made = cls(stamp, _Family(None, "h", {}), _Family(None, "u", {}))
        for index in range(SHARDS):
            made.uid_of.shards[index] = _Shard({}, 0, 0)
            made.owner_of.shards[index] = _Shard({}, 0, 0)
        made.apply(dict(pairs), ())
        return made

    def apply(
        self, upserts: dict[str, str], removed: Iterable[str]
    ) -> tuple[dict[str, str | None], dict[str, str | None]]:
        """Apply one write; returns what changed on each side (None: removed)."""
        hrefs: dict[str, str | None] = {}
        owners: dict[str, str | None] = {}
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

    def _drop(self, href: str, hrefs: dict[str, str | None], owners: dict[str, str | None]) -> None:
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
        """Record our own write, still under the lock: in memory, then appended to the shard
        logs, then the stamp."""
        entry = self._entries[name]
        try:
            hrefs, owners = entry.apply(upserts, removed)
        except StaleUids:
            self.forget(name, log)  # a shard that no longer matches its stamp: read again next time
            return
        entry.stamp = _stamp(folder)
        try:
            _append(log, entry, hrefs, owners)
        except OSError:
            self.forget(name, log)

    def forget(self, name: str, log: Path) -> None:
        self._entries.pop(name, None)
        with contextlib.suppress(OSError):
            (_shard_dir(log) / _STAMP).unlink()
        with contextlib.suppress(OSError):
            log.unlink()


def _open(log: Path, stamp: Stamp) -> Uids | None:
    """The index the shard folder describes (its shards read when asked), the single log of an
    earlier version turned into shards, or None when neither ends at `stamp`."""
    shards = _shard_dir(log)
    try:
        with (shards / _STAMP).open("rb") as source:
            at, lengths = pickle.load(source)
        if tuple(at) == stamp and isinstance(lengths, dict) and _sizes_match(shards, lengths):
            return Uids(stamp, _Family(shards, "h", lengths), _Family(shards, "u", lengths), shards, lengths)
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


def _sizes_match(shards: Path, lengths: dict[str, int]) -> bool:
    """Every shard log as long as the stamp says (a stat each, nothing read)."""
    for name, length in lengths.items():
        try:
            size = (shards / name).stat().st_size
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


def _write_stamp(shards: Path, entry: Uids) -> None:
    scratch = shards / f".{_STAMP}.{os.getpid()}"
    with scratch.open("wb") as sink:
        pickle.dump((entry.stamp, entry.lengths), sink, protocol=pickle.HIGHEST_PROTOCOL)
    scratch.replace(shards / _STAMP)


def _rewrite(log: Path, entry: Uids) -> None:
    """Every shard written whole, then the stamp (best effort: without a stamp the next
    process reads the UIDs from the items)."""
    shards = _shard_dir(log)
    try:
        with contextlib.suppress(OSError):
            (shards / _STAMP).unlink()
        shards.mkdir(parents=True, exist_ok=True)
        lengths: dict[str, int] = {}
        for family in (entry.uid_of, entry.owner_of):
            for index in range(SHARDS):
                shard = family.shard(index)
                lengths[family.name(index)] = _write_shard(shards / family.name(index), shard)
        entry.lengths = lengths
        entry.folder = shards
        for family in (entry.uid_of, entry.owner_of):
            family.attach(shards, lengths)
        _write_stamp(shards, entry)
    except OSError:
        with contextlib.suppress(OSError):
            shutil.rmtree(shards)


def _write_shard(path: Path, shard: _Shard) -> int:
    if not shard.entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        shard.length = shard.appended = 0
        return 0
    data = pickle.dumps(shard.entries, protocol=pickle.HIGHEST_PROTOCOL)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_bytes(data)
    scratch.replace(path)
    shard.length, shard.appended = len(data), len(shard.entries)
    return len(data)


def _append(log: Path, entry: Uids, hrefs: dict[str, str | None], owners: dict[str, str | None]) -> None:
    """The changes of one write appended to the shards they fall in (a shard grown to twice its
    entries is written whole instead), then the new stamp."""
    shards = entry.folder
    if shards is None:
        _rewrite(log, entry)
        return
    # No need to remove the old stamp first (a removal cost ~3 ms per batch on a file system
    # mounted with `discard`): until the new one is written, the old one names the folder as it
    # was before this write, and lengths the shards appended to no longer have.
    for family, changes in ((entry.uid_of, hrefs), (entry.owner_of, owners)):
        by_shard: dict[int, dict[str, str | None]] = {}
        for key, value in changes.items():
            by_shard.setdefault(shard_of(key), {})[key] = value
        for index, part in by_shard.items():
            shard = family.shard(index)
            name = family.name(index)
            shard.appended += len(part)
            if shard.appended > max(_MIN_COMPACT, 2 * len(shard.entries)):
                entry.lengths[name] = _write_shard(shards / name, shard)
                continue
            data = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
            with (shards / name).open("ab") as sink:
                sink.write(data)
            shard.length += len(data)
            entry.lengths[name] = shard.length
    _write_stamp(shards, entry)
