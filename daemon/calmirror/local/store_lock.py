"""The store lock inside this process: writers first, readers not starved, then the `flock`.

Radicale's store lock is an `flock` on one file, taken shared for every read and
exclusive for every write. Linux grants a shared `flock` whenever only shared ones are
held, even while an exclusive one waits, so with reads overlapping back to back (client
queries, listings, the index keepers) a write waited for tens of seconds while reads
passed in milliseconds. Every storage object of this process (the server's, Radicale's
own, `LocalStore`'s) first passes one `FairLock` per store folder, then the `flock`,
which still keeps other processes (the CLI) out:

- a waiting writer stops new readers from entering; writers go one at a time, in order
  of arrival;
- when a writer finishes, every reader that was waiting for it goes in together before
  the next writer, so a stream of writes cannot starve the reads either;
- a thread that already holds the shared lock takes it again at once (Radicale nests
  shared locks: the middleware holds one around a whole PROPFIND, and Radicale takes its
  own inside); waiting there behind a writer would wait for itself.

A thread holding the shared lock must not ask for the exclusive one (an upgrade): that
would wait for itself in the `flock` too, so it is refused with an error here instead.

A client's read of a calendar only calmirror writes (a mirror, `busy/`) takes no store lock
at all (`unlocked_reads`): held for a one-week query on a 10,000-event mirror, the shared
lock kept every client's write waiting seconds behind it. Such a collection is written only
by this process's own writer (`bulk`), which puts each file in place by renaming a complete
one (cache and history before the item), so a reader sees each item whole, old or new; a
read during a mirror batch may see part of the batch, as a client syncing a moment earlier
or later would. Radicale's own cache writes during a read take its per-collection cache
lock, and an item cache entry is checked against the item's bytes before use.

Lanes: a write that touches one collection's files only (a mirror or `busy/` batch, a
client's PUT or DELETE of one item in `appointments/` or `blocked/`) takes the store lock
*shared* and that collection's lane exclusively (`hold_lane`: a `FairLock` per collection
in this process, then an `flock` on the collection's own lock file, which keeps another
calmirror process writing the same collection out). With one exclusive lock for the whole
store, every client PUT into `appointments/` waited behind a mirror batch (up to 2.6 s:
`syncfs`, the UID index's first replay) and behind every other collection's writes.
Everything else that writes (creating, changing or removing a collection, MOVE, Radicale's
own PUT of a whole calendar, the CLI's base set-up) still takes the store lock exclusively,
so it waits for every lane and every lane waits for it; a plain Radicale, which knows no
lanes, takes the store's `flock` exclusively for every write and so is kept out too.
Two lane writers never touch the same files: each collection keeps its items, item cache,
sync history and UID log in its own folders. A reader holding the shared store lock may
see a lane write in progress in the collection it reads, one whole file at a time (every
file is renamed into place complete), as a read of a mirror always could; calmirror's own
reads of one collection (`LocalStore`) take its lane shared and see none.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from calmirror.local import layout


class LockUpgrade(RuntimeError):
    """A thread holding the shared store lock asked for the exclusive one."""


class FairLock:
    def __init__(self) -> None:
        mutex = threading.Lock()
        # Waking is targeted: readers wait together on `_changed`, each writer on its own
        # condition (same mutex), and only the writer whose turn it is gets woken. With one
        # condition for all, every release woke every waiter (twenty clients' threads), each
        # of which needed the interpreter lock to look and sleep again before the one whose
        # turn it was could run.
        self._mutex = mutex
        self._changed = threading.Condition(mutex)
        self._writers: dict[int, threading.Condition] = {}  # ticket -> its waiting writer
        self._readers = 0  # holders of the shared lock (threads, not nestings)
        self._writing = False
        self._readers_waiting = 0
        self._grants = 0  # counts the times the waiting readers were let in together
        self._next_ticket = 0  # writers are served in order of arrival
        self._serving = 0
        self._abandoned: set[int] = set()  # tickets of writers that stopped waiting
        self._mine = threading.local()

    # --- what a thread holds ------------------------------------------------------------

    def _depth(self) -> tuple[int, int]:
        return getattr(self._mine, "reads", 0), getattr(self._mine, "writes", 0)

    def _set_depth(self, reads: int, writes: int) -> None:
        self._mine.reads, self._mine.writes = reads, writes

    @property
    def waiting_writers(self) -> int:
        with self._changed:
            return self._next_ticket - self._serving - len(self._abandoned) - int(self._writing)

    @property
    def readers(self) -> int:
        with self._changed:
            return self._readers

    @property
    def readers_waiting(self) -> int:
        with self._changed:
            return self._readers_waiting

    def held(self) -> bool:
        """Whether this thread holds the lock in either mode."""
        return self._depth() != (0, 0)

    def held_shared_only(self) -> bool:
        """Whether this thread holds the lock, and only shared."""
        reads, writes = self._depth()
        return reads > 0 and writes == 0

    # --- taking and giving back ---------------------------------------------------------

    @contextmanager
    def hold(self, mode: str) -> Iterator[None]:
        """The lock in `mode` ("r" shared, "w" exclusive) for the block."""
        if mode not in ("r", "w"):
            raise ValueError(f"unknown lock mode {mode!r}")
        reads, writes = self._depth()
        if reads or writes:
            if mode == "w" and not writes:
                raise LockUpgrade("a thread holding the calendar store's shared lock asked for the exclusive one")
            # Nested in what this thread holds already: nothing to wait for.
            self._set_depth(reads + (mode == "r"), writes + (mode == "w"))
            try:
                yield
            finally:
                self._set_depth(reads, writes)
            return
        if mode == "r":
            self._acquire_read()
        else:
            self._acquire_write()
        self._set_depth(int(mode == "r"), int(mode == "w"))
        try:
            yield
        finally:
            self._set_depth(0, 0)
            if mode == "r":
                self._release_read()
            else:
                self._release_write()

    def _writers_ahead(self) -> bool:
        return self._writing or self._next_ticket - self._serving - len(self._abandoned) > 0

    def _acquire_read(self) -> None:
        with self._changed:
            if not self._writers_ahead():
                self._readers += 1
                return
            self._readers_waiting += 1
            grants = self._grants
            try:
                self._changed.wait_for(lambda: self._grants != grants)
            except BaseException:
                if self._grants != grants:  # let in meanwhile: give the place back
                    self._readers -= 1
                    if self._readers == 0:
                        self._wake_writer()
                else:
                    self._readers_waiting -= 1
                raise
            # The writer before us counted us in when it finished (`_let_readers_in`).

    def _release_read(self) -> None:
        with self._changed:
            self._readers -= 1
            if self._readers == 0:
                self._wake_writer()

    def _acquire_write(self) -> None:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            mine = self._writers[ticket] = threading.Condition(self._mutex)
            try:
                mine.wait_for(lambda: self._serving == ticket and not self._writing and self._readers == 0)
            except BaseException:
                self._abandon(ticket)
                raise
            finally:
                del self._writers[ticket]
            self._writing = True

    def _release_write(self) -> None:
        with self._changed:
            self._writing = False
            self._advance()
            self._let_readers_in()
            self._wake_writer()

    def _wake_writer(self) -> None:
        """Wake the writer whose turn it is, if it waits (it checks the rest itself)."""
        waiting = self._writers.get(self._serving)
        if waiting is not None:
            waiting.notify()

    def _advance(self) -> None:
        """The next writer's turn, past any that stopped waiting."""
        self._serving += 1
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1

    def _abandon(self, ticket: int) -> None:
        if ticket == self._serving:
            self._advance()
        else:
            self._abandoned.add(ticket)
        if not self._writers_ahead():
            self._let_readers_in()
        self._wake_writer()

    def _let_readers_in(self) -> None:
        if self._readers_waiting:
            self._readers += self._readers_waiting
            self._readers_waiting = 0
            self._grants += 1
            self._changed.notify_all()


_unlocked = threading.local()


def reads_unlocked() -> bool:
    """Whether this thread is inside `unlocked_reads`."""
    return bool(getattr(_unlocked, "on", False))


@contextmanager
def unlocked_reads() -> Iterator[None]:
    """Within the block, this thread's shared store locks are not taken (see the module
    docstring: only around a client's read of a collection only calmirror writes)."""
    before = getattr(_unlocked, "on", False)
    _unlocked.on = True
    try:
        yield
    finally:
        _unlocked.on = before


_locks: dict[str, FairLock] = {}
_locks_lock = threading.Lock()


def lock_for(store_dir: str | Path) -> FairLock:
    """The one lock of the store in `store_dir` for this process."""
    key = os.path.realpath(store_dir)
    with _locks_lock:
        return _locks.setdefault(key, FairLock())


# --- lanes: one lock per collection for writes that touch that collection only -------------

LANES_DIR = ".calmirror-lanes"
LANE_REQUESTS = frozenset({"PUT", "DELETE"})


def lane_of_request(method: str, path: str) -> str | None:
    """The collection (`user/name`) whose lane a client's write takes instead of the whole
    store: a PUT or DELETE of one item of `appointments/` or `blocked/`. None for every other
    write (a collection's own PUT, DELETE or properties, MOVE across collections)."""
    if method not in LANE_REQUESTS or not path:
        return None
    parts = layout.split_path(path)
    if len(parts) == 3 and parts[1] in layout.WRITABLE:
        return f"{parts[0]}/{parts[1]}"
    return None


_lanes: dict[tuple[str, str], FairLock] = {}


def lane_for(store_dir: str | Path, collection: str) -> FairLock:
    """The in-process lock of one collection's lane (`collection` as `user/name`)."""
    key = (os.path.realpath(store_dir), collection)
    with _locks_lock:
        return _lanes.setdefault(key, FairLock())


def lane_file(store_dir: str | Path, collection: str) -> Path:
    """The lane's lock file: one per collection, beside Radicale's own `.Radicale.lock`."""
    return Path(store_dir) / LANES_DIR / (quote(collection, safe="") + ".lock")


@contextmanager
def hold_lane(store_dir: str | Path, collection: str, mode: str) -> Iterator[None]:
    """The lane of `collection` in `mode` ("r" or "w"): this process's `FairLock` (writers
    first, as the store's), then the `flock` that keeps other processes' writers of the same
    collection out. The caller holds the store lock shared. Nested in the same thread, the
    lane is held already: nothing more is taken."""
    fair = lane_for(store_dir, collection)
    nested = fair.held()
    with fair.hold(mode):
        if nested:
            yield
            return
        path = lane_file(store_dir, collection)
        try:
            handle = path.open("a+b")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+b")
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if mode == "w" else fcntl.LOCK_SH)
            yield  # closing the file gives the flock back
