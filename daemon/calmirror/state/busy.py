"""The busy index's tables: every resource of every source of busy time, and its busy
occurrences over a rolling horizon (computed by `availability.spans`, stored here).

Rows are written for the horizon and busy rules (`fingerprint`) recorded in `meta` under
`busy_index`; a batch computed for others is not written but its items marked stale (an
empty digest), so the next upkeep computes them again. Queries apply the user's switches
(travel, tentative, all-day per source) and the appointment-UID exclusion in SQL.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calmirror.model import BusyBatch, BusySpan, IndexedItem, busy_mirror_key
from calmirror.raw_text import loaded
from calmirror.state.busy_far import BusyFarTables, span_values, window_params
from calmirror.state.schema import BUSY_WINDOW_INDEX

META = "busy_index"
TOKEN = "busy_token:"  # + local collection name: the sync token the index follows


@dataclass(frozen=True)
class SpanQuery:
    """One window over some sources, with the query-time rules."""

    start: int
    end: int
    sources: Sequence[str]
    allday: Sequence[str]  # sources whose all-day events are busy
    mirrors: Sequence[str]  # sources whose events with an appointment's UID do not count
    travel: bool
    tentative: bool
    skip_uids: Sequence[str] = ()
    unavailable: bool = False  # only out-of-office rows (kind 2)


SpanRow = tuple[str, str, str, int, int, int, int, int, int]  # source uid summary start end travel all_day tent approx

_SELECT = (
    "SELECT source, uid, summary, start_us, end_us, travel, all_day, tentative, approximate FROM busy_spans "
    "WHERE {range} AND end_us > :ws AND start_us + CASE WHEN :travel THEN 0 ELSE travel END < :we "
    "AND (:tentative OR maybe = 0) AND (:unavailable = 0 OR tentative = 2) "
    "AND source IN (SELECT value FROM json_each(:sources)) "
    "AND (all_day = 0 OR source IN (SELECT value FROM json_each(:allday))) "
    "AND NOT (source IN (SELECT value FROM json_each(:mirrors)) AND uid IN (SELECT uid FROM appointments)) "
    "AND uid NOT IN (SELECT value FROM json_each(:skip))"
)
_RANGES = ("long = 0 AND start_us >= :lo AND start_us < :we", "long = 1 AND start_us < :we")
_QUERY = " UNION ALL ".join(_SELECT.format(range=r) for r in _RANGES)
# Only each span's busy start (travel applied) and end, from the covering index alone.
_EXTENTS = " UNION ALL ".join(
    _SELECT.replace(
        "SELECT source, uid, summary, start_us, end_us, travel, all_day, tentative, approximate",
        "SELECT start_us + CASE WHEN :travel THEN 0 ELSE travel END, end_us",
    ).format(range=r)
    for r in _RANGES
)


def _meta_of(db: Any) -> dict[str, Any] | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (META,)).fetchone()
    return json.loads(row[0]) if row else None


def _matches(meta: dict[str, Any] | None, batch: BusyBatch) -> bool:
    return meta is not None and meta["fingerprint"] == batch.fingerprint and tuple(meta["horizon"]) == batch.horizon


def _params(q: SpanQuery) -> dict[str, Any]:
    return window_params(q, q.start, q.end)


class BusyTables(BusyFarTables):
    """The busy index; see `availability.sources` for who keeps it current and asks it."""

    _busy_meta_kept: tuple[int, dict[str, Any] | None] | None = None  # (data_version, meta)

    def busy_meta(self) -> dict[str, Any] | None:
        """{"fingerprint": ..., "horizon": [start, end], "complete": bool}, or None before the
        first build. Read again only when some connection committed since (every guard check
        and free-busy REPORT asks), or inside this thread's own transaction."""
        if self._writing == threading.get_ident():
            with self._reading() as conn:
                return _meta_of(conn)
        version = self.data_version()
        kept = self._busy_meta_kept
        if kept is not None and kept[0] == version:
            return dict(kept[1]) if kept[1] is not None else None
        with self._reading() as conn:
            meta = _meta_of(conn)
        self._busy_meta_kept = (version, meta)
        return dict(meta) if meta is not None else None

    def busy_reset(self, fingerprint: str, horizon: tuple[int, int]) -> None:
        """Start the index afresh (new rules, or never built): every source is indexed again."""
        with self.transaction() as db:
            db.execute("DELETE FROM busy_spans")
            db.execute("DELETE FROM busy_items")
            self._far_forget(db.conn, None)
            db.execute("DELETE FROM meta WHERE key LIKE ?", (TOKEN + "%",))
            db.execute("INSERT INTO busy_changes (lo, hi) VALUES (NULL, NULL)")
            meta = {"fingerprint": fingerprint, "horizon": list(horizon), "complete": False}
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (META, json.dumps(meta)))

    def busy_mark_complete(self) -> None:
        with self.transaction() as db:
            meta = _meta_of(db.conn)
            if meta is not None:
                meta["complete"] = True
                db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(meta), META))

    def busy_write(
        self,
        source: str,
        batch: BusyBatch,
        deletes: Iterable[str] = (),
        *,
        token: tuple[str, str] | None = None,
    ) -> bool:
        """Write one source's entries (and the sync token they bring the index to), in one
        transaction; False when the index moved on meanwhile (the items are then marked stale).

        The commit does not wait for the disk (`transaction(durable=False)`): the entries are
        derived from texts already on disk, and every start compares each entry's digest with
        its text (`BusyUpkeep.reconcile`), so a power cut costs computing them again. Under 20
        writing clients, each PUT's follow waited for an fsync while guard checks and
        free-busy answers waited for the follow."""
        with self.transaction(durable=False) as db:
            return self._busy_apply(db.conn, source, batch, list(batch.items), list(deletes), token=token)

    def _busy_apply(
        self,
        conn: sqlite3.Connection,
        source: str,
        batch: BusyBatch | None,
        changed: Sequence[str],
        deletes: Sequence[str],
        *,
        replace: bool = False,
        token: tuple[str, str] | None = None,
    ) -> bool:
        """Inside a transaction: `changed` hrefs get `batch`'s entries, or are marked stale when
        it has none for them (or assumed another horizon or rules); `deletes` leave."""
        if replace:
            self._busy_drop(conn, source, None)
        if deletes:
            self._busy_drop(conn, source, deletes)
        fits = batch is not None and _matches(_meta_of(conn), batch)
        for href in changed:
            item = batch.items.get(href) if batch is not None and fits else None
            self._busy_put(conn, source, href, item)
        if token is not None and fits:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (TOKEN + token[0], json.dumps(token[1]))
            )
        return fits

    def _busy_put(self, conn: sqlite3.Connection, source: str, href: str, item: IndexedItem | None) -> None:
        row = conn.execute("SELECT id FROM busy_items WHERE source = ? AND href = ?", (source, href)).fetchone()
        if row is not None:
            self._busy_changed(conn, row[0])
            conn.execute("DELETE FROM busy_spans WHERE item = ?", (row[0],))
            self._far_forget(conn, row[0])
        values = ("", None, None) if item is None else (item.digest, item.lo, item.hi)
        if row is None:
            cursor = conn.execute(
                "INSERT INTO busy_items (source, href, digest, lo, hi) VALUES (?, ?, ?, ?, ?)", (source, href, *values)
            )
            ident = int(cursor.lastrowid or 0)
        else:
            ident = row[0]
            conn.execute("UPDATE busy_items SET digest = ?, lo = ?, hi = ? WHERE id = ?", (*values, ident))
        if item is not None and item.spans:
            self._busy_insert(conn, ident, source, item.spans)
            self._busy_changed(conn, ident)

    def _busy_insert(self, conn: sqlite3.Connection, item: int, source: str, spans: Iterable[BusySpan]) -> None:
        conn.executemany(
            "INSERT INTO busy_spans (item, source, uid, summary, start_us, end_us, travel, long, all_day, "
            "tentative, maybe, approximate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(item, source, *span_values(s)) for s in spans],
        )

    def _busy_drop(self, conn: sqlite3.Connection, source: str, hrefs: Sequence[str] | None) -> None:
        if hrefs is None:
            conn.execute(
                "INSERT INTO busy_changes (lo, hi) SELECT MIN(start_us), MAX(end_us) FROM busy_spans "
                "WHERE source = ? HAVING COUNT(*) > 0",
                (source,),
            )
            conn.execute("DELETE FROM busy_spans WHERE source = ?", (source,))
            self._far_forget_source(conn, source)
            conn.execute("DELETE FROM busy_items WHERE source = ?", (source,))
            return
        for href in hrefs:
            row = conn.execute("SELECT id FROM busy_items WHERE source = ? AND href = ?", (source, href)).fetchone()
            if row is not None:
                self._busy_changed(conn, row[0])
                conn.execute("DELETE FROM busy_spans WHERE item = ?", (row[0],))
                self._far_forget(conn, row[0])
                conn.execute("DELETE FROM busy_items WHERE id = ?", (row[0],))

    def _busy_changed(self, conn: sqlite3.Connection, item: int) -> None:
        """Record where one entry's spans lie (before a change and after it)."""
        conn.execute(
            "INSERT INTO busy_changes (lo, hi) SELECT MIN(start_us), MAX(end_us) FROM busy_spans "
            "WHERE item = ? HAVING COUNT(*) > 0",
            (item,),
        )

    def busy_rows_fewer_than(self, count: int) -> bool:
        """Whether the index holds fewer than `count` rows (counting at most that many)."""
        with self._reading() as conn:
            row = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM busy_spans LIMIT ?)", (count,)).fetchone()
            return int(row[0]) < count

    @contextlib.contextmanager
    def busy_window_deferred(self) -> Iterator[None]:
        """The window index set aside while a big first fill writes its rows, made again (one
        sort) once it is done, failed or not.

        A mirror batch's rows land all over the index (a weekly series has one per week for
        three years), so every commit wrote a few thousand scattered index pages again: at
        20,000 events about 10 s of CPU for 0.5 million rows, against 2 s written without it
        and sorted once. Answers do not change (no query's rows depend on an index; only their
        order among equal rows may); queries during the fill scan the table instead. A process
        that dies meanwhile leaves it to the next one's opening (`create_busy_tables`)."""
        with self.transaction() as db:
            db.execute("DROP INDEX IF EXISTS busy_spans_window")
        try:
            yield
        finally:
            with self.transaction() as db:
                db.execute(BUSY_WINDOW_INDEX)

    def busy_changes_since(self, seq: int) -> tuple[int, list[tuple[int, int] | None]]:
        """The last change's number and the ranges changed after `seq` (None: anywhere)."""
        with self._lock:
            rows = self.db.conn.execute("SELECT seq, lo, hi FROM busy_changes WHERE seq > ? ORDER BY seq", (seq,))
            found = [(r[0], None if r[1] is None else (int(r[1]), int(r[2]))) for r in rows]
            if not found:
                last = self.db.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM busy_changes").fetchone()[0]
                return max(int(last), seq), []
        return found[-1][0], [r[1] for r in found]

    def busy_changes_done(self, seq: int) -> None:
        """Forget the changes up to `seq`: `busy/` follows them."""
        with self.transaction() as db:
            db.execute("DELETE FROM busy_changes WHERE seq <= ?", (seq,))

    def busy_forget(self, source: str) -> None:
        with self.transaction() as db:
            self._busy_drop(db.conn, source, None)

    def busy_token(self, collection: str) -> str | None:
        value = self.get_meta(TOKEN + collection)
        return str(value) if value is not None else None

    # --- reading -----------------------------------------------------------------------

    # The upkeep's reads are on reader connections (WAL): under the writers' lock every guard
    # check waited behind whatever transaction another thread had open (a push, a mirror
    # batch, a guard note) just to learn that nothing had changed.

    def busy_digests(self, source: str) -> dict[str, str]:
        """href -> digest of the text each entry was computed from ("" when stale)."""
        with self._reading() as conn:
            return {r[0]: r[1] for r in conn.execute("SELECT href, digest FROM busy_items WHERE source = ?", (source,))}

    def busy_sources(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self.db.conn.execute("SELECT DISTINCT source FROM busy_items")}

    def busy_stale(self) -> list[tuple[str, str]]:
        """(source, href) of entries to compute again."""
        with self._reading() as conn:
            return [(r[0], r[1]) for r in conn.execute("SELECT source, href FROM busy_items WHERE digest = ''")]

    def busy_spans(self, q: SpanQuery) -> list[SpanRow]:
        """Spans touching [start, end) under the query's rules: two index range scans."""
        with self._reading() as conn:
            return [tuple(row) for row in conn.execute(_QUERY, _params(q))]

    def busy_extents(self, q: SpanQuery) -> list[tuple[int, int]]:
        """(busy start, end) of the same spans as `busy_spans`: what merged busy time needs,
        read from the covering index without building a row of strings per occurrence."""
        with self._reading() as conn:
            return [(row[0], row[1]) for row in conn.execute(_EXTENTS, _params(q))]

    def busy_reaching(
        self, sources: Sequence[str], start: int, end: int, before: int, after: int
    ) -> list[tuple[str, str]]:
        """(source, href) of entries that may hold busy time in [start, end) before `before` or
        from `after` on: what a window reaching past the horizon must parse."""
        with self._lock:
            return [
                (r[0], r[1])
                for r in self.db.conn.execute(
                    "SELECT source, href FROM busy_items WHERE lo IS NOT NULL "
                    "AND source IN (SELECT value FROM json_each(?)) AND lo < ? AND (hi IS NULL OR hi > ?) "
                    "AND (lo < ? OR hi IS NULL OR hi > ?)",
                    (json.dumps(list(sources)), end, start, before, after),
                )
            ]

    def busy_open_ended(self, end: int, new_end: int) -> list[tuple[str, str]]:
        """(source, href) of entries that may hold busy time between `end` and `new_end`."""
        with self._lock:
            return [
                (r[0], r[1])
                for r in self.db.conn.execute(
                    "SELECT source, href FROM busy_items WHERE lo IS NOT NULL AND lo < ? AND (hi IS NULL OR hi > ?)",
                    (new_end, end),
                )
            ]

    def busy_roll(
        self,
        fingerprint: str,
        old: tuple[int, int],
        new: tuple[int, int],
        added: Mapping[tuple[str, str], Sequence[BusySpan]],
    ) -> bool:
        """Move the horizon from `old` to `new` in one transaction: spans that ended before the
        new start leave, `added` (the occurrences between the two ends) come in."""
        with self.transaction() as db:
            conn = db.conn
            meta = _meta_of(conn)
            if meta is None or meta["fingerprint"] != fingerprint or tuple(meta["horizon"]) != old:
                return False
            conn.execute("DELETE FROM busy_spans WHERE end_us <= ?", (new[0],))
            conn.execute("INSERT INTO busy_changes (lo, hi) VALUES (NULL, NULL)")
            for (source, href), spans in added.items():
                row = conn.execute("SELECT id FROM busy_items WHERE source = ? AND href = ?", (source, href)).fetchone()
                if row is not None and spans:
                    self._busy_insert(conn, row[0], source, spans)
            meta["horizon"] = list(new)
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(meta), META))
            return True

    # --- texts the index is computed from ------------------------------------------------

    def mirror_digest_walk(self, calendar_id: str) -> Iterable[tuple[str, str]]:
        """(href, text) of every resource with a text, read a page at a time."""
        last = ""
        while True:
            with self._lock:
                page = self.db.conn.execute(
                    "SELECT href, body FROM mirror_items WHERE calendar_id = ? AND body IS NOT NULL AND href > ? "
                    "ORDER BY href LIMIT 500",
                    (calendar_id, last),
                ).fetchall()
            if not page:
                return
            yield from ((r[0], loaded(r[1]) or "") for r in page)
            last = page[-1][0]


__all__ = ["META", "BusyTables", "SpanQuery", "SpanRow", "busy_mirror_key"]
