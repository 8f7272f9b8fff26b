"""The state database's connection: one per process, shared by threads behind a lock, WAL with
synchronous=FULL so a committed outbox row survives power loss."""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from calmirror.errors import LocalError
from calmirror.state.schema import SCHEMA_VERSION, create_schema, enable_wal, upgrade_from_1

READERS = 4  # connections that only read, shared by the daemon's threads
_FULL = "{path}: cannot save state ({error}); is the disk full? Free some space and run it again (nothing is lost)"


def _disk_full(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)


def _cannot_open(path: Path, error: sqlite3.DatabaseError) -> str:
    """Why the state database did not open, and what to do. A home that cannot be written
    (a read-only mount, another user's folder) told the user to move state.db aside: advice
    that throws away every link, mirror and waiting appointment to fix nothing."""
    unwritable = [p for p in (path.parent, path) if p.exists() and not os.access(p, os.W_OK)]
    if unwritable:
        return (
            f"{unwritable[0]}: cannot be written (a read-only file system, or another user's); "
            "make it writable for this user, or use another --home"
        )
    return f"{path}: cannot open the state database ({error}); move it aside to start afresh"


class StateBase:
    def __init__(self, path: Path) -> None:
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA busy_timeout=30000")
            enable_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            for suffix in ("", "-wal", "-shm"):
                sidecar = path.with_name(path.name + suffix)
                if sidecar.exists():
                    sidecar.chmod(0o600)
        except sqlite3.DatabaseError as exc:
            raise LocalError(_cannot_open(path, exc)) from None
        self.path = path
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._writing: int | None = None  # the thread inside `transaction`, if any
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._readers_lock = threading.Lock()
        self._opened = 0
        self._watcher: sqlite3.Connection | None = None
        with self._lock:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LocalError(f"{path}: written by a newer calmirror (schema {version}); upgrade calmirror")
            # In one IMMEDIATE transaction: a CLI command and the daemon starting at the same
            # moment on a new home would otherwise both create tables in autocommit mode, and
            # the one whose snapshot went stale gets "database is locked" at once, without
            # waiting for the busy timeout.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if (
                    conn.execute("PRAGMA user_version").fetchone()[0] == 1
                ):  # read again: another process may have upgraded it
                    upgrade_from_1(self.db)
                create_schema(self.db)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
        with self._readers_lock:
            while not self._readers.empty():
                self._readers.get_nowait().close()
            if self._watcher is not None:
                self._watcher.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite_utils.Database]:
        """One atomic unit; nested use joins the outer transaction.

        `durable=False` commits without waiting for the disk (WAL, synchronous=NORMAL): still
        atomic and in order, but a power cut may take it back together with every commit
        after it, until the next durable commit (of any process) syncs the log. For records a
        later durable commit confirms and whose loss only costs work again (a mirror batch:
        the pass marked the mirror unclean durably first, and saves its token durably last).
        """
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                yield self.db
                return
            if not durable:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._writing = threading.get_ident()
                try:
                    yield self.db
                except BaseException as exc:
                    # SQLite itself rolls back on a full disk (SQLITE_FULL): a second ROLLBACK would
                    # raise "no transaction is active" and hide why.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if isinstance(exc, sqlite3.OperationalError) and _disk_full(exc):
                        raise LocalError(_FULL.format(path=self.path, error=exc)) from None
                    raise
                else:
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.OperationalError as exc:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise LocalError(_FULL.format(path=self.path, error=exc)) from None
            finally:
                self._writing = None
                if not durable:
                    conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to read committed state on, without the writers' lock.

        The daemon's threads share one connection for writing, behind one lock; a guard check
        or a free-busy answer once queued there behind a mirror batch or a push (and behind
        whatever that thread waited for under the interpreter lock). WAL lets readers go on
        beside a writer, so reads take one of `READERS` connections of their own. A thread in
        the middle of a transaction reads on the writing connection, so it sees its own writes."""
        if self._writing == threading.get_ident():
            with self._lock:
                yield self.db.conn
            return
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            with self._readers_lock:
                fresh = self._opened < READERS
                self._opened += fresh
            conn = self._open_reader() if fresh else self._readers.get()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._readers.put(conn)

    def _open_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA query_only=1")
        conn.row_factory = sqlite3.Row
        return conn

    def data_version(self) -> int:
        """A number that moves whenever any connection (this process's writer, another
        process) commits: SQLite's `data_version`, on a connection of its own that never writes."""
        with self._readers_lock:
            if self._watcher is None:
                self._watcher = self._open_reader()
            return int(self._watcher.execute("PRAGMA data_version").fetchone()[0])

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._reading() as conn:
            cursor = conn.execute(sql, params)
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    # --- meta --------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.table("meta").upsert({"key": key, "value": json.dumps(value)}, pk="key")

    # --- account and calendars ---------------------------------------------------------
