"""One calendar's changes in write order, so that a sync token is a position in a list.

iCloud answers a sync-collection or a ctag poll in about the same time whatever the size
of the calendar. Radicale's own `sync` hashes the state of every item and pickles it for
each token, which made the emulator's answers O(n) and a 100,000-event benchmark measure
the emulator instead of calmirror. Here every write appends `(name, etag)` (an empty etag
for a deletion) and a token names the position after its last entry: the changes since a
token are the entries after it, the current token is the end of the list.

The log lives beside the items (`.Radicale.emulator-changes` in the collection's folder:
Radicale skips names that start with a dot, and deleting or moving the calendar takes it
along), so tokens stay valid across an emulator restart on the same data folder. When it
is opened it is reconciled with the items actually on disk: anything changed behind its
back (another program, a crash between item and log) becomes new entries, so a token from
before still sees it. A missing or unreadable log starts a new generation, which every
older token of the calendar fails (403 valid-sync-token, as iCloud for an expired one).

Listing lag (ICLOUD.md #17, eventual consistency): with `lag_s` set, an item written less
than `lag_s` seconds ago is missing from what the log lists (a full listing, the changes
since a token) and the token handed out stops just before the oldest such write, so a later
sync from it reports the write once it shows: iCloud is slow to list a change, it does not
lose one. Deletions show at once. Write times live in memory only: after a restart every
entry counts as old.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, unquote

LOG_NAME = ".Radicale.emulator-changes"
_HEADER = "calmirror-emulator-changes 1 "
_GENERATION_BYTES = 16
_POSITION_BYTES = 8
_CHECK_BYTES = 8  # generation + position + check = the 32 bytes Radicale's token had


class ChangeLog:
    """The entries of one calendar, in memory and appended to a file as they come."""

    def __init__(self, path: Path, generation: bytes, entries: list[tuple[str, str]]) -> None:
        self.path = path
        self._generation = generation
        self._entries = entries
        self._current: dict[str, str] = {}
        for name, etag in entries:
            self._apply(name, etag)
        self._lock = threading.Lock()
        self.lag_s = 0.0
        self.clock = time.monotonic  # replaceable, for tests of the lag
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, position) of writes under lag

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str, present: Mapping[str, str]) -> ChangeLog:
        """The log in ``folder`` brought up to ``present`` (name -> ETag of every item on disk)."""
        path = Path(folder) / LOG_NAME
        loaded = _read(path)
        if loaded is None:
            log = cls(path, secrets.token_bytes(_GENERATION_BYTES), [])
            log._rewrite()
        else:
            generation, entries, whole = loaded
            log = cls(path, generation, entries)
            if not whole:
                log._rewrite()  # drop the cut-off line before anything is appended after it
        drift: list[tuple[str, str | None]] = [
            (name, etag) for name, etag in present.items() if log._current.get(name) != etag
        ]
        drift += [(name, None) for name in log._current if name not in present]
        log.record(drift)
        return log

    @classmethod
    def create(cls, folder: str) -> ChangeLog:
        """A new, empty log for a new calendar (a new generation even if one was there)."""
        log = cls(Path(folder) / LOG_NAME, secrets.token_bytes(_GENERATION_BYTES), [])
        log._rewrite()
        return log

    # --- writing ----------------------------------------------------------------------

    def record(self, changes: Iterable[tuple[str, str | None]]) -> None:
        """Append ``(name, etag)`` for each write, ``(name, None)`` for each deletion."""
        added = [(name, etag or "") for name, etag in changes]
        if not added:
            return
        with self._lock:
            with self.path.open("a", encoding="utf-8") as out:
                out.write("".join(f"{quote(name, safe='')}\t{etag}\n" for name, etag in added))
            now = self.clock()
            for name, etag in added:
                if etag and self.lag_s > 0:
                    self._recent.append((now, len(self._entries)))
                self._entries.append((name, etag))
                self._apply(name, etag)

    def record_past_tokens(self, name: str, etag: str) -> None:
        """A write no token will report: a full listing shows it, the changes since any token
        do not (a fault: a token that moved past a write iCloud listed late). Not in the file,
        so reopening the log finds it on disk and reports it from then on."""
        with self._lock:
            self._apply(name, etag)

    def _apply(self, name: str, etag: str) -> None:
        if etag:
            self._current[name] = etag
        else:
            self._current.pop(name, None)

    def _rewrite(self) -> None:
        with self.path.open("w", encoding="utf-8") as out:
            out.write(_HEADER + self._generation.hex() + "\n")
            out.write("".join(f"{quote(name, safe='')}\t{etag}\n" for name, etag in self._entries))

    # --- reading ----------------------------------------------------------------------

    def token_hex(self) -> str:
        """The 64 hex digits naming the current position (they change with every write that shows)."""
        with self._lock:
            return _token_hex(self._generation, self._visible()[0])

    def hidden(self) -> set[str]:
        """Names of the items written too recently to be listed (empty without lag)."""
        with self._lock:
            return self._visible()[1]

    def _visible(self) -> tuple[int, set[str]]:
        """(the position before the oldest write still hidden, or the end; the names hidden)."""
        if not self._recent:
            return len(self._entries), set()
        cutoff = self.clock() - self.lag_s
        while self._recent and self._recent[0][0] <= cutoff:
            self._recent.popleft()
        if not self._recent:
            return len(self._entries), set()
        names = {self._entries[position][0] for _, position in self._recent}
        return self._recent[0][1], {name for name in names if name in self._current}

    def position(self, token_hex: str) -> int | None:
        """The position a token of this log names; None for another log's, a forged or a future one."""
        try:
            raw = bytes.fromhex(token_hex)
        except ValueError:
            return None
        if len(raw) != _GENERATION_BYTES + _POSITION_BYTES + _CHECK_BYTES or not raw.startswith(self._generation):
            return None
        position = int.from_bytes(raw[_GENERATION_BYTES : _GENERATION_BYTES + _POSITION_BYTES], "big")
        with self._lock:
            if position > len(self._entries) or _token_hex(self._generation, position) != token_hex:
                return None
        return position

    def changes_since(self, position: int | None) -> tuple[str, list[tuple[str, str | None]]]:
        """(token now, changed names with their current ETag or None if deleted).

        None asks for every present item (a first sync). Otherwise the cost is the number
        of entries written since ``position``, not the size of the calendar.
        """
        with self._lock:
            shown, hidden = self._visible()
            token = _token_hex(self._generation, max(shown, position or 0))
            if position is None:
                return token, [(name, etag) for name, etag in self._current.items() if name not in hidden]
            names = dict.fromkeys(name for name, _etag in self._entries[position:])
            return token, [(name, self._current.get(name)) for name in names if name not in hidden]

    def etag(self, name: str) -> str | None:
        with self._lock:
            return self._current.get(name)


def _token_hex(generation: bytes, position: int) -> str:
    head = generation + position.to_bytes(_POSITION_BYTES, "big")
    return (head + hashlib.sha256(head).digest()[:_CHECK_BYTES]).hex()


def _read(path: Path) -> tuple[bytes, list[tuple[str, str]], bool] | None:
    """(generation, entries, whether every line was whole) from the file, or None when it is
    missing or not a log."""
    try:
        with path.open(encoding="utf-8") as source:
            header = source.readline()
            if not header.startswith(_HEADER) or not header.endswith("\n"):
                return None
            generation = bytes.fromhex(header[len(_HEADER) :].strip())
            if len(generation) != _GENERATION_BYTES:
                return None
            entries: list[tuple[str, str]] = []
            for line in source:
                if not line.endswith("\n"):
                    # A write cut off by a crash: the reconcile re-adds what it named.
                    return generation, entries, False
                name, tab, etag = line[:-1].partition("\t")
                if not tab:
                    return None
                entries.append((unquote(name), etag))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return generation, entries, True
