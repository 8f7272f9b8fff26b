"""The time-range index of mirror collections: each item's cached time range and occurrences.

Why a database file of its own (`ranges.db` beside `state.db`) rather than tables in
`state.db`: the index is a cache that the local server checks against the store folder on
every query (`local/range_query.py`), so losing it costs a rebuild, never an answer, and it
needs no durability (synchronous=NORMAL in WAL). Its writes come from the server's request
threads while they hold Radicale's shared store lock, and may be large (every occurrence of
a few thousand series); in `state.db` they would queue behind, and hold up, the outbox and
mirror transactions that hold `State`'s lock, and a request thread waiting for that lock
while holding the store lock is one lock order away from a deadlock with a writer. A
database that cannot be opened is moved aside and started afresh, for the same reason.

Only this package touches SQLite; `local/` sees this class through its `RangeStore` protocol.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from calmirror.model import FileStamp, ItemRange, Occurrences, RangeCandidate

log = logging.getLogger("calmirror.state")
_VERSIONS = itertools.count(1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS range_items (
    id INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    href TEXT NOT NULL,
    ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    trusted INTEGER NOT NULL,
    etag TEXT NOT NULL,
    component TEXT NOT NULL,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL,
    occ_etag TEXT, occ_low INTEGER, occ_high INTEGER, occ_exact INTEGER,
    UNIQUE (collection, href)
);
DROP INDEX IF EXISTS range_items_window;
CREATE INDEX IF NOT EXISTS range_items_short
    ON range_items (collection, component, (stop - start < 864000), start, stop);
CREATE TABLE IF NOT EXISTS range_occurrences (
    item INTEGER NOT NULL REFERENCES range_items (id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS range_occurrences_item ON range_occurrences (item, stop, start);
"""

# Radicale's prefilter keeps an item when its range overlaps the window; `easy` is its own
# "filters matched" test; `decided` asks the recorded occurrences when they cover the window.
# An item shorter than ten days that overlaps the window starts at most ten days before it, so
# short items are a range scan on `start` (`range_items_short`); the long ones (series, mostly)
# are read whole. One scan from the collection's first item to the window's end read half the
# collection for a week in its middle.
_CANDIDATE = """
SELECT i.href,
       (i.start >= :start OR i.stop <= :stop) AS easy,
       CASE WHEN i.occ_exact = 1 AND i.occ_etag = i.etag AND i.occ_low <= :start AND :stop <= i.occ_high
            THEN EXISTS (SELECT 1 FROM range_occurrences o WHERE o.item = i.id AND o.stop > :start AND o.start < :stop)
       END AS decided
FROM range_items i
WHERE i.collection = :collection {component} AND i.start < :stop AND i.stop > :start AND {part}
"""
_PARTS = ("(i.stop - i.start < 864000) = 1 AND i.start >= :start - 864000", "(i.stop - i.start < 864000) = 0")


class RangeIndex:
    """One connection shared by the server's threads behind a lock; every call is short."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.rows_version = next(_VERSIONS)  # a new number, in the whole process, whenever item rows change
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as error:
            log.warning("%s cannot be read (%s); starting the time-range index afresh", self.path, error)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + suffix).unlink()
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            self.path.chmod(0o600)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def stamps(self, collection: str) -> dict[str, tuple[FileStamp, bool]]:
        """href -> (file stamp, trusted) of every item indexed for `collection`."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT href, ino, size, mtime_ns, ctime_ns, trusted FROM range_items WHERE collection = ?",
                (collection,),
            ).fetchall()
        return {href: ((ino, size, mtime, ctime), bool(trusted)) for href, ino, size, mtime, ctime, trusted in rows}

    def update(self, collection: str, items: Sequence[ItemRange], gone: Sequence[str]) -> None:
        """Rows for items read again and none for items no longer there, in one transaction.
        Recorded occurrences stay with their item version (`occ_etag`): a row whose etag
        changed no longer uses them, and the next recording replaces them."""
        if not items and not gone:
            return
        self.rows_version = next(_VERSIONS)
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM range_items WHERE collection = ? AND href = ?", [(collection, href) for href in gone]
            )
            conn.executemany(
                "INSERT INTO range_items (collection, href, ino, size, mtime_ns, ctime_ns, trusted, etag, component,"
                " start, stop) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (collection, href) DO UPDATE SET ino = excluded.ino, size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, trusted = excluded.trusted,"
                " etag = excluded.etag, component = excluded.component, start = excluded.start, stop = excluded.stop",
                [
                    (
                        collection,
                        item.href,
                        *item.stamp,
                        int(item.trusted),
                        item.etag,
                        item.component,
                        item.start,
                        item.end,
                    )
                    for item in items
                ],
            )

    def candidates(self, collection: str, component: str | None, start: int, end: int) -> list[RangeCandidate]:
        """Items of `component` (any when None) whose cached range overlaps [start, end)."""
        only = "AND i.component = :component" if component is not None else ""
        sql = " UNION ALL ".join(_CANDIDATE.format(component=only, part=part) for part in _PARTS)
        params = {"collection": collection, "component": component, "start": start, "stop": end}
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            RangeCandidate(href, bool(easy), None if decided is None else bool(decided)) for href, easy, decided in rows
        ]

    def unrecorded(self, collection: str, longer_than: int, low: int, high: int) -> list[str]:
        """VEVENT items whose cached range is longer than `longer_than` seconds (series, mostly)
        and whose current version has no occurrences recorded over [low, high]."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT href FROM range_items WHERE collection = ? AND component = 'VEVENT' AND stop - start > ?"
                " AND NOT (occ_etag IS etag AND occ_low <= ? AND occ_high >= ?)",
                (collection, longer_than, low, high),
            ).fetchall()
        return [href for (href,) in rows]

    def record(self, collection: str, href: str, occurrences: Occurrences) -> None:
        """Keep the occurrences of the item version `occurrences.etag` (replacing older ones)."""
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT id FROM range_items WHERE collection = ? AND href = ?", (collection, href)
            ).fetchone()
            if found is None:
                return
            (item,) = found
            conn.execute("DELETE FROM range_occurrences WHERE item = ?", (item,))
            conn.execute(
                "UPDATE range_items SET occ_etag = ?, occ_low = ?, occ_high = ?, occ_exact = ? WHERE id = ?",
                (occurrences.etag, occurrences.low, occurrences.high, int(occurrences.exact), item),
            )
            conn.executemany(
                "INSERT INTO range_occurrences (item, start, stop) VALUES (?, ?, ?)",
                [(item, start, stop) for start, stop in occurrences.ranges],
            )

    def forget(self, collection: str) -> None:
        self.rows_version = next(_VERSIONS)
        with self._transaction() as conn:
            conn.execute("DELETE FROM range_items WHERE collection = ?", (collection,))

    def keep_only(self, collections: set[str]) -> None:
        """Forget every collection but these (the mirrors that exist: a removed mirror's rows
        would otherwise stay, unused, until a mirror of the same name came back)."""
        self.rows_version = next(_VERSIONS)
        with self._transaction() as conn:
            present = [name for (name,) in conn.execute("SELECT DISTINCT collection FROM range_items")]
            conn.executemany(
                "DELETE FROM range_items WHERE collection = ?", [(name,) for name in present if name not in collections]
            )
