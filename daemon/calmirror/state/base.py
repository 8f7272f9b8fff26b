"""The state database's connection: one per process, shared by threads behind a lock, WAL with
synchronous=FULL so a committed outbox row survives power loss."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from calmirror.errors import LocalError
from calmirror.state.schema import SCHEMA_VERSION, create_schema, enable_wal, upgrade_from_1


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
            raise LocalError(f"{path}: cannot open the state database ({exc}); move it aside to start afresh") from None
        self.path = path
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
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

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One atomic unit; nested use joins the outer transaction."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                yield self.db
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    conn.execute("ROLLBACK")
                    raise LocalError(f"{self.path}: cannot save state ({exc}); is the disk full?") from None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.db.query(sql, params)]

    # --- meta --------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.table("meta").upsert({"key": key, "value": json.dumps(value)}, pk="key")

    # --- account and calendars ---------------------------------------------------------
