"""Busy occurrences past the busy index's horizon, kept a calendar year at a time.

The index (`state/busy.py`) holds a year back and two years ahead. A booking page or a guard
check asking about a later date needs the occurrences of every series that reaches there
(about 1,500 open-ended ones at 10,000 mirrored events, seconds of parsing). Computed once
for a whole year and kept here, the next such question is a range scan again.

Rows are the same as the index's (the engine's own output, switches applied by the query).
An item's rows for a year are written only while its entry still has the digest they were
computed for, and every change to an entry (`BusyTables._busy_put`, `_busy_drop`,
`busy_reset`) removes its rows for all years in the same transaction: a row here is never
older than its entry. `busy_far_done` records which entries a year holds (with or without
rows), so a year is complete for a set of sources when no entry reaching it lacks a mark.
At most `YEARS_KEPT` years are kept, the least recently asked about leaving first.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from calmirror.model import BUSY_SHORT_US, KIND_UNAVAILABLE, BusySpan
from calmirror.state.base import StateBase

YEARS_KEPT = 4
TOUCH_S = 60.0  # a year's last use is recorded at most this often
_far_used: dict[str, dict[int, float]] = {}  # database -> year -> when its use was last recorded here


@dataclass(frozen=True)
class FarItem:
    """An entry whose rows a year lacks: what to compute, and the digest it is for."""

    item: int
    source: str
    href: str
    digest: str


@dataclass(frozen=True)
class FarPiece:
    """Part of a query window inside one year: [start, end), keeping only rows whose busy
    start is at or after `min_start` and whose end is at or before `max_end` (what another
    piece, or the index inside the horizon, answers already)."""

    year: int
    start: int
    end: int
    min_start: int
    max_end: int


_MISSING = (
    "SELECT i.id, i.source, i.href, i.digest FROM busy_items i "
    "LEFT JOIN busy_far_done d ON d.item = i.id AND d.year = :year "
    "WHERE i.lo IS NOT NULL AND i.source IN (SELECT value FROM json_each(:sources)) "
    "AND i.lo < :ye AND (i.hi IS NULL OR i.hi > :ys) AND (i.lo < :h0 OR i.hi IS NULL OR i.hi > :h1) "
    "AND (d.item IS NULL OR d.digest != i.digest)"
)
_FAR_SELECT = (
    "SELECT source, uid, summary, start_us, end_us, travel, all_day, tentative, approximate FROM busy_far_spans "
    "WHERE year = :year AND {range} AND end_us > :ws AND end_us <= :max_end "
    "AND start_us + CASE WHEN :travel THEN 0 ELSE travel END < :we "
    "AND start_us + CASE WHEN :travel THEN 0 ELSE travel END >= :min_start "
    "AND (:tentative OR maybe = 0) AND (:unavailable = 0 OR tentative = 2) "
    "AND source IN (SELECT value FROM json_each(:sources)) "
    "AND (all_day = 0 OR source IN (SELECT value FROM json_each(:allday))) "
    "AND NOT (source IN (SELECT value FROM json_each(:mirrors)) AND uid IN (SELECT uid FROM appointments)) "
    "AND uid NOT IN (SELECT value FROM json_each(:skip))"
)
_FAR_QUERY = " UNION ALL ".join(
    _FAR_SELECT.format(range=r) for r in ("long = 0 AND start_us >= :lo AND start_us < :we", "long = 1")
)


@dataclass(frozen=True)
class FarQuery:
    """The query-time rules of a far question (the same switches as `SpanQuery`)."""

    sources: Sequence[str]
    allday: Sequence[str]
    mirrors: Sequence[str]
    travel: bool
    tentative: bool
    skip_uids: Sequence[str] = ()
    unavailable: bool = False  # only out-of-office rows (kind 2)


class BusyFarTables(StateBase):
    def busy_far_missing(
        self, sources: Sequence[str], pieces: Sequence[FarPiece], horizon: tuple[int, int]
    ) -> dict[int, list[FarItem]]:
        """Per year of the pieces, the entries of `sources` that may hold busy time in them
        and whose rows for that year are missing or were computed for another text."""
        with self._reading() as conn:
            return {
                year: [FarItem(*r) for r in conn.execute(_MISSING, _missing_params(sources, pieces, year, horizon))]
                for year in sorted({p.year for p in pieces})
            }

    def busy_far_put(self, year: int, computed: Sequence[tuple[FarItem, Sequence[BusySpan]]]) -> int:
        """Store a year's rows of some entries in one transaction; an entry changed since its
        rows were computed is left out (it is asked for again). Returns how many were stored."""
        stored = 0
        with self.transaction() as db:
            conn = db.conn
            for item, spans in computed:
                row = conn.execute("SELECT digest FROM busy_items WHERE id = ?", (item.item,)).fetchone()
                if row is None or row[0] != item.digest:
                    continue
                conn.execute("DELETE FROM busy_far_spans WHERE item = ? AND year = ?", (item.item, year))
                conn.executemany(
                    "INSERT INTO busy_far_spans (item, year, source, uid, summary, start_us, end_us, travel, long, "
                    "all_day, tentative, maybe, approximate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(item.item, year, item.source, *span_values(s)) for s in spans],
                )
                conn.execute(
                    "INSERT OR REPLACE INTO busy_far_done (item, year, digest) VALUES (?, ?, ?)",
                    (item.item, year, item.digest),
                )
                stored += 1
            self._far_keep(conn, year)
        return stored

    def busy_far_spans(
        self, query: FarQuery, pieces: Sequence[FarPiece], horizon: tuple[int, int]
    ) -> list[tuple[Any, ...]] | None:
        """Every piece's rows under the query's rules, read in one snapshot; None when a year
        lacks the rows of an entry reaching it (changed meanwhile: compute and ask again)."""
        sources = list(query.sources)
        years = sorted({p.year for p in pieces})
        with self._reading() as conn:
            if not conn.in_transaction:
                conn.execute("BEGIN")  # one snapshot for the check and the rows
            for year in years:
                if conn.execute(_MISSING + " LIMIT 1", _missing_params(sources, pieces, year, horizon)).fetchone():
                    return None
            rows: list[tuple[Any, ...]] = []
            for piece in pieces:
                rows += [tuple(row) for row in conn.execute(_FAR_QUERY, _piece_params(query, piece))]
        now = time.time()
        used = _far_used.setdefault(str(self.path), {})
        if any(used.get(year, 0.0) < now - TOUCH_S for year in years):
            with self.transaction() as db:
                for year in years:
                    db.execute("UPDATE busy_far_years SET used = ? WHERE year = ?", (now, year))
                    used[year] = now
        return rows

    def busy_far_years(self) -> list[int]:
        with self._reading() as conn:
            return [r[0] for r in conn.execute("SELECT year FROM busy_far_years ORDER BY year")]

    def _far_keep(self, conn: sqlite3.Connection, year: int) -> None:
        """Record the year's use; forget the least recently used years past `YEARS_KEPT`."""
        conn.execute("INSERT OR REPLACE INTO busy_far_years (year, used) VALUES (?, ?)", (year, time.time()))
        for (old,) in conn.execute(
            "SELECT year FROM busy_far_years WHERE year != ? ORDER BY used DESC LIMIT -1 OFFSET ?",
            (year, YEARS_KEPT - 1),
        ).fetchall():
            conn.execute("DELETE FROM busy_far_spans WHERE year = ?", (old,))
            conn.execute("DELETE FROM busy_far_done WHERE year = ?", (old,))
            conn.execute("DELETE FROM busy_far_years WHERE year = ?", (old,))

    def _far_forget(self, conn: sqlite3.Connection, item: int | None) -> None:
        """Inside the transaction that changes an entry (None: every entry)."""
        if item is None:
            for table in ("busy_far_spans", "busy_far_done", "busy_far_years"):
                conn.execute(f"DELETE FROM {table}")
            return
        conn.execute("DELETE FROM busy_far_spans WHERE item = ?", (item,))
        conn.execute("DELETE FROM busy_far_done WHERE item = ?", (item,))

    def _far_forget_source(self, conn: sqlite3.Connection, source: str) -> None:
        """Inside the transaction that drops every entry of `source` (before the entries go)."""
        conn.execute("DELETE FROM busy_far_spans WHERE source = ?", (source,))
        conn.execute("DELETE FROM busy_far_done WHERE item IN (SELECT id FROM busy_items WHERE source = ?)", (source,))


def span_values(s: BusySpan) -> tuple[str, str, int, int, int, int, int, int, int, int]:
    """A span's columns from `uid` on, as both span tables store them."""
    long = int(s.end - s.start >= BUSY_SHORT_US)
    return (
        s.uid,
        s.summary,
        s.start,
        s.end,
        s.travel,
        long,
        int(s.all_day),
        KIND_UNAVAILABLE if s.unavailable else int(s.tentative),
        int(s.maybe),
        int(s.approximate),
    )


def _missing_params(
    sources: Sequence[str], pieces: Sequence[FarPiece], year: int, horizon: tuple[int, int]
) -> dict[str, Any]:
    mine = [p for p in pieces if p.year == year]
    return {
        "year": year,
        "sources": json.dumps(list(sources)),
        "ys": min(p.start for p in mine),
        "ye": max(p.end for p in mine),
        "h0": horizon[0],
        "h1": horizon[1],
    }


def _piece_params(q: FarQuery, piece: FarPiece) -> dict[str, Any]:
    extra = {"year": piece.year, "min_start": piece.min_start, "max_end": piece.max_end}
    return window_params(q, piece.start, piece.end) | extra


class Switches(Protocol):
    """The query-time rules both span tables' queries apply."""

    @property
    def sources(self) -> Sequence[str]: ...
    @property
    def allday(self) -> Sequence[str]: ...
    @property
    def mirrors(self) -> Sequence[str]: ...
    @property
    def travel(self) -> bool: ...
    @property
    def tentative(self) -> bool: ...
    @property
    def skip_uids(self) -> Sequence[str]: ...
    @property
    def unavailable(self) -> bool: ...


def window_params(q: Switches, start: int, end: int) -> dict[str, Any]:
    """A window's parameters for either span table's query."""
    return {
        "ws": start,
        "we": end,
        "lo": start - BUSY_SHORT_US,
        "travel": int(q.travel),
        "tentative": int(q.tentative),
        "unavailable": int(q.unavailable),
        "sources": json.dumps(list(q.sources)),
        "allday": json.dumps(list(q.allday)),
        "mirrors": json.dumps(list(q.mirrors)),
        "skip": json.dumps(list(q.skip_uids)),
    }
