"""What changed in a collection since a token, from the folder's listing: O(changes) reads.

Radicale's own `sync` reads every item of the collection and its history entry and writes a
token file on every call, under the store lock: O(n) per call. The daemon follows
`appointments/` after every client write (the push detector and the busy index both), so
20 clients writing at once spent their time in it. Here a token names a snapshot of the
folder kept in this process: each item's file stamp (inode, size, modification and change
time in nanoseconds) and a digest of its bytes. The next call lists the folder (a `stat`
per item, no item read), reads only the files whose stamp moved, and reports those whose
bytes differ, plus the ones that appeared or went. It sees every writer alike (a client
through Radicale, calmirror's own writes, another process, a restored backup): no write
has to be reported to it.

Radicale writes an item as a new file renamed into place (a new inode); a file changed in
place within the timestamp granularity could keep its stamp, so a stamp taken within
`RACY_NS` of its own modification is not trusted: that file is read again next time.

A token also carries a Radicale sync token. In another process (after a restart), or once
the snapshot is gone from memory, the caller's token falls back to Radicale's `sync` from
that Radicale token (which reports at least everything changed since then), and the
snapshot is built again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from radicale import pathutils

RACY_NS = 2_000_000_000  # a stamp this close to now may not move on the next change
KEEP = 8  # snapshots kept per collection folder (the daemon's two followers each hold one)
MARK = "#calmirror:"

Stamp = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns
Entry = tuple[Stamp | None, bytes | None]  # stamp (None: not to be trusted), digest (None: unreadable)


@dataclass
class _Folder:
    snapshots: OrderedDict[int, dict[str, Entry]]
    next_id: int = 0


_EPOCH = uuid.uuid4().hex[:12]  # tokens of another process never name a snapshot here
_folders: dict[str, _Folder] = {}
_lock = threading.Lock()


def split(token: str | None) -> tuple[str, int | None]:
    """(Radicale's token, the snapshot id of this process or None)."""
    if not token:
        return "", None
    radicale_token, _, ours = token.partition(MARK)
    epoch, _, number = ours.partition(":")
    if epoch != _EPOCH or not number.isdigit():
        return radicale_token, None
    return radicale_token, int(number)


def _token(radicale_token: str, snapshot: int) -> str:
    return f"{radicale_token}{MARK}{_EPOCH}:{snapshot}"


def _list(folder: str) -> dict[str, os.stat_result]:
    found: dict[str, os.stat_result] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file() and pathutils.is_safe_filesystem_path_component(entry.name):
                found[entry.name] = entry.stat()
    return found


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return None


def _entries(folder: str, old: dict[str, Entry]) -> tuple[dict[str, Entry], list[str]]:
    """The folder's entries now, and the hrefs that differ from `old` (present or gone)."""
    settled = time.time_ns() - RACY_NS
    entries: dict[str, Entry] = {}
    changed: list[str] = []
    for href, found in _list(folder).items():
        stamp: Stamp = (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)
        before = old.get(href)
        trusted = max(found.st_mtime_ns, found.st_ctime_ns) < settled
        if before is not None and before[0] == stamp and before[1] is not None:
            entries[href] = before
            continue
        digest = _digest(Path(folder) / href)
        entries[href] = (stamp if trusted else None, digest)
        if before is None or digest is None or before[1] != digest:
            changed.append(href)
    changed.extend(href for href in old if href not in entries)
    return entries, changed


def since(folder: str, token: str | None) -> tuple[str, list[str]] | None:
    """(new token, hrefs changed since `token`) from this process's snapshot, or None when
    `token` names none here (the caller then asks Radicale and calls `remember`).

    Needs no store lock: every writer puts whole files in place by renaming them, so a file
    read here is one version or the next. A file replaced between its `stat` and its read
    is recorded with the older stamp and the newer digest: the next call reads it again and
    finds the digest it has, so nothing is reported twice or lost; one deleted meanwhile
    is reported (and its reader finds it gone)."""
    radicale_token, number = split(token)
    if number is None:
        return None
    key = os.path.realpath(folder)
    with _lock:
        known = _folders.get(key)
        old = None if known is None else known.snapshots.get(number)
    if old is None:
        return None
    try:
        entries, changed = _entries(folder, old)
    except FileNotFoundError:  # the collection is gone: the caller finds out under the lock
        return None
    if not changed:
        with _lock:  # the same state: the same token (stamps that settled are kept)
            known = _folders.get(key)
            if known is not None and number in known.snapshots:
                known.snapshots[number] = entries
                return _token(radicale_token, number), []
    return _token(radicale_token, _keep(key, entries)), changed


def remember(folder: str, radicale_token: str) -> str:
    """A token for the folder as it is now, carrying `radicale_token` (every file is read
    once; the caller holds the store lock and has just asked Radicale's `sync`)."""
    entries, _ = _entries(folder, {})
    return _token(radicale_token, _keep(os.path.realpath(folder), entries))


def _keep(key: str, entries: dict[str, Entry]) -> int:
    with _lock:
        known = _folders.setdefault(key, _Folder(OrderedDict()))
        number = known.next_id
        known.next_id += 1
        known.snapshots[number] = entries
        while len(known.snapshots) > KEEP:
            known.snapshots.popitem(last=False)
        return number
