"""Mirror tables: which iCloud resource is which local item, with iCloud's exact text."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from calmirror.model import (
    COPY_KINDS,
    BusyBatch,
    MirrorEntry,
    MirrorRow,
    busy_mirror_key,
)
from calmirror.raw_text import loaded, stored
from calmirror.state.busy import BusyTables
from calmirror.state.mirror_view import KnownItems

_ENTRY_COLUMNS = "href, etag, uid, local_href, copy, reason, horizon"
_CHUNK = 500  # hrefs per IN (...) query, under SQLite's variable limit


def _entry(r: dict[str, Any]) -> MirrorEntry:
    return MirrorEntry(
        r["href"],
        r["etag"],
        r["uid"],
        r["local_href"],
        r["copy"] or "exact",
        r["reason"] or "",
        None,
        r["horizon"] or "",
    )


def _mirror_row(r: dict[str, Any]) -> MirrorRow:
    return MirrorRow(
        calendar_id=r["calendar_id"],
        slug=r["slug"],
        sync_token=r["sync_token"],
        last_sync=r["last_sync"],
        last_attempt=r["last_attempt"],
        last_error=r["last_error"],
        item_count=r["item_count"] or 0,
        skipped=r["skipped"] or 0,
        held_empty=bool(r["held_empty"]),
        generation=r["generation"] or 0,
    )


class MirrorTables(BusyTables):
    """The item maps of mirrors and calmirror's copy of iCloud's exact text of each resource."""

    def mirror(self, calendar_id: str) -> MirrorRow | None:
        rows = self._rows("SELECT * FROM mirrors WHERE calendar_id = ?", (calendar_id,))
        return _mirror_row(rows[0]) if rows else None

    def mirrors(self) -> list[MirrorRow]:
        return [_mirror_row(r) for r in self._rows("SELECT * FROM mirrors ORDER BY slug")]

    def update_mirror(self, calendar_id: str, **fields: Any) -> None:
        with self.transaction() as db:
            db.table("mirrors").upsert({"calendar_id": calendar_id, **fields}, pk="calendar_id")

    def forget_mirror(self, calendar_id: str) -> None:
        with self.transaction() as db:
            for table in ("mirrors", "mirror_items", "skipped_items"):
                db.execute(f"DELETE FROM {table} WHERE calendar_id = ?", (calendar_id,))
            db.execute("DELETE FROM meta WHERE key = ?", (f"mirror_clean:{calendar_id}",))
            self._busy_drop(db.conn, busy_mirror_key(calendar_id), None)

    def mirror_items(self, calendar_id: str) -> dict[str, MirrorEntry]:
        """The item map, without the texts (every row: tests and tools; a pass reads only the
        rows it needs through `known_items`)."""
        return {
            r["href"]: _entry(r)
            for r in self._rows(f"SELECT {_ENTRY_COLUMNS} FROM mirror_items WHERE calendar_id = ?", (calendar_id,))
        }

    def known_items(self, calendar_id: str) -> KnownItems:
        """The item map as a read-through view: each lookup reads one indexed row."""
        return KnownItems(self, calendar_id)

    def mirror_entries(self, calendar_id: str, hrefs: Iterable[str]) -> dict[str, MirrorEntry]:
        """The map rows of `hrefs` that exist, by primary key, in chunks."""
        found: dict[str, MirrorEntry] = {}
        wanted = list(dict.fromkeys(hrefs))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._rows(
                f"SELECT {_ENTRY_COLUMNS} FROM mirror_items WHERE calendar_id = ? AND href IN ({marks})",
                (calendar_id, *chunk),
            ):
                found[r["href"]] = _entry(r)
        return found

    def mirror_item_count(self, calendar_id: str) -> int:
        rows = self._rows("SELECT item_count FROM mirrors WHERE calendar_id = ?", (calendar_id,))
        return int(rows[0]["item_count"] or 0) if rows else 0

    def mirror_hrefs_after(self, calendar_id: str, after: str, limit: int) -> list[str]:
        """One page of the map's hrefs in order, after `after` (keyset paging on the primary key)."""
        with self._lock:
            return [
                row[0]
                for row in self.db.execute(
                    "SELECT href FROM mirror_items WHERE calendar_id = ? AND href > ? ORDER BY href LIMIT ?",
                    (calendar_id, after, limit),
                )
            ]

    def compatible_due(self, calendar_id: str, horizon: str) -> list[str]:
        """Hrefs of compatible copies derived for a horizon before `horizon` (an indexed query)."""
        with self._lock:
            return sorted(
                row[0]
                for row in self.db.execute(
                    "SELECT href FROM mirror_items WHERE calendar_id = ? AND copy = 'compatible' "
                    "AND horizon != '' AND horizon < ?",
                    (calendar_id, horizon),
                )
            )

    def mirror_clean(self, calendar_id: str) -> bool:
        """Whether the last pass that wrote this mirror finished (its files and map agree)."""
        return bool(self.get_meta(f"mirror_clean:{calendar_id}", False))

    def set_mirror_clean(self, calendar_id: str, clean: bool) -> None:
        with self.transaction() as db:
            if clean:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, 'true')", (f"mirror_clean:{calendar_id}",)
                )
            else:
                db.execute("DELETE FROM meta WHERE key = ?", (f"mirror_clean:{calendar_id}",))

    def apply_mirror_map(
        self,
        calendar_id: str,
        upserts: list[MirrorEntry],
        deletes: list[str],
        skipped: dict[str, str],
        *,
        replace: bool,
        busy: BusyBatch | None = None,
        durable: bool = True,
        **mirror_fields: Any,
    ) -> int:
        """Record what one batch did, the exact texts it fetched, their busy-index entries
        (`busy`, computed beforehand) and the new token, in one transaction; the calendar's
        generation moves on so caches of the texts see the change. Returns how many items
        the map now holds for the calendar. `durable=False`: see `transaction`."""
        now = time.time()
        with self.transaction(durable=durable) as db:
            # One counter for all calendars, so a mirror forgotten and added again never
            # repeats a generation a cache may still hold.
            row = db.execute("SELECT value FROM meta WHERE key = 'text_generation'").fetchone()
            generation = (json.loads(row[0]) if row else 0) + 1
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('text_generation', ?)", (json.dumps(generation),)
            )
            if replace:
                db.execute("DELETE FROM mirror_items WHERE calendar_id = ?", (calendar_id,))
                db.execute("DELETE FROM skipped_items WHERE calendar_id = ?", (calendar_id,))
            # The counts move by what this batch adds and removes: counting the rows again
            # per batch made a 100,000-event initial mirror quadratic.
            counts = db.execute(
                "SELECT item_count, skipped FROM mirrors WHERE calendar_id = ?", (calendar_id,)
            ).fetchone()
            count, nskipped = (0, 0) if replace or counts is None else (counts[0] or 0, counts[1] or 0)
            for href in deletes:
                count -= db.execute(
                    "DELETE FROM mirror_items WHERE calendar_id = ? AND href = ?", (calendar_id, href)
                ).rowcount
                nskipped -= db.execute(
                    "DELETE FROM skipped_items WHERE calendar_id = ? AND href = ?", (calendar_id, href)
                ).rowcount
            if upserts:
                count += len(upserts) - len(self.mirror_entries(calendar_id, [e.href for e in upserts]))
                db.conn.executemany(
                    "INSERT INTO mirror_items (calendar_id, href, etag, uid, local_href, body, copy, reason, gen, "
                    "horizon) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (calendar_id, href) DO UPDATE SET etag = excluded.etag, uid = excluded.uid, "
                    "local_href = excluded.local_href, body = COALESCE(excluded.body, body), copy = excluded.copy, "
                    "reason = excluded.reason, gen = excluded.gen, horizon = excluded.horizon",
                    [
                        (
                            calendar_id,
                            e.href,
                            e.etag,
                            e.uid,
                            e.local_href,
                            stored(e.body),
                            e.copy,
                            e.reason,
                            generation,
                            e.horizon,
                        )
                        for e in upserts
                    ],
                )
                for e in upserts:
                    nskipped -= db.execute(
                        "DELETE FROM skipped_items WHERE calendar_id = ? AND href = ?", (calendar_id, e.href)
                    ).rowcount
            self._busy_apply(
                db.conn,
                busy_mirror_key(calendar_id),
                busy,
                [e.href for e in upserts if e.body is not None],
                [*deletes, *skipped],
                replace=replace,
            )
            if skipped:
                marks = ",".join("?" * len(skipped))
                nskipped -= db.execute(
                    f"SELECT COUNT(*) FROM skipped_items WHERE calendar_id = ? AND href IN ({marks})",
                    (calendar_id, *skipped),
                ).fetchone()[0]
                nskipped += len(skipped)
                db.table("skipped_items").upsert_all(
                    [{"calendar_id": calendar_id, "href": h, "reason": r, "seen_at": now} for h, r in skipped.items()],
                    pk=("calendar_id", "href"),
                )
            db.table("mirrors").upsert(
                {
                    "calendar_id": calendar_id,
                    "item_count": count,
                    "skipped": nskipped,
                    "generation": generation,
                    **mirror_fields,
                },
                pk="calendar_id",
            )
        return count

    # --- the exact-text store ----------------------------------------------------------

    def mirror_texts(self, calendar_id: str) -> dict[str, str]:
        """href -> iCloud's exact text of every resource of the calendar that has one
        (whatever the local mirror holds for it)."""
        return {
            r["href"]: loaded(r["body"]) or ""
            for r in self._rows(
                "SELECT href, body FROM mirror_items WHERE calendar_id = ? AND body IS NOT NULL", (calendar_id,)
            )
        }

    def mirror_texts_of(self, calendar_id: str, hrefs: Iterable[str]) -> dict[str, str]:
        """href -> exact text of those of `hrefs` that have one, in chunks."""
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(hrefs))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                for row in self.db.execute(
                    f"SELECT href, body FROM mirror_items WHERE calendar_id = ? AND body IS NOT NULL "
                    f"AND href IN ({marks})",
                    (calendar_id, *chunk),
                ):
                    found[row[0]] = loaded(row[1]) or ""
        return found

    def mirror_generation(self, calendar_id: str) -> int:
        """Moves on with every batch recorded for the calendar; 0 for an unknown calendar."""
        rows = self._rows("SELECT generation FROM mirrors WHERE calendar_id = ?", (calendar_id,))
        return int(rows[0]["generation"] or 0) if rows else 0

    def copy_counts(self, calendar_id: str) -> dict[str, dict[str, int]]:
        """How many resources the mirror holds in each form, and why: kind -> reason -> count
        (reason "" for exact copies). Unreadable ones are the skipped items."""
        counts: dict[str, dict[str, int]] = {kind: {} for kind in (*COPY_KINDS, "unreadable")}
        # Only the few rows that are not plain exact copies are counted (through the index on
        # copy and reason); the plain exact ones are what the mirror's counter leaves. One
        # range of the index per kind: with the kinds in one OR, SQLite walked every exact
        # row (0.08 s at 100,000 events, in every pass).
        others = 0
        for r in self._rows(
            "SELECT kind, reason, COUNT(*) AS n FROM ("
            "SELECT copy AS kind, COALESCE(reason, '') AS reason FROM mirror_items "
            "WHERE calendar_id = ?1 AND copy = 'compatible' "
            "UNION ALL SELECT copy, COALESCE(reason, '') FROM mirror_items "
            "WHERE calendar_id = ?1 AND copy = 'withheld' "
            "UNION ALL SELECT 'exact', reason FROM mirror_items "
            "WHERE calendar_id = ?1 AND copy = 'exact' AND reason > '' "
            "UNION ALL SELECT 'exact', reason FROM mirror_items "
            "WHERE calendar_id = ?1 AND copy IS NULL AND reason > ''"
            ") GROUP BY kind, reason",
            (calendar_id,),
        ):
            counts.setdefault(r["kind"], {})[r["reason"]] = r["n"]
            others += r["n"]
        plain = self.mirror_item_count(calendar_id) - others
        if plain > 0:
            counts["exact"][""] = plain
        for r in self._rows(
            "SELECT reason, COUNT(*) AS n FROM skipped_items WHERE calendar_id = ? GROUP BY reason", (calendar_id,)
        ):
            counts["unreadable"][r["reason"] or "unreadable"] = r["n"]
        return counts

    def refetch_items(self, calendar_id: str, hrefs: list[str]) -> None:
        """Forget these items' ETags and the token, so the next pass lists everything and
        fetches exactly them again (their local copies were lost)."""
        with self.transaction() as db:
            db.conn.executemany(
                "UPDATE mirror_items SET etag = '' WHERE calendar_id = ? AND href = ?",
                [(calendar_id, href) for href in hrefs],
            )
            db.execute("UPDATE mirrors SET sync_token = NULL WHERE calendar_id = ?", (calendar_id,))

    def refetch_mirror(self, calendar_id: str) -> None:
        """Forget ETags and token so the next pass fetches and rewrites every item, while the
        map still knows which local copies exist (so remote deletions are still applied)."""
        with self.transaction() as db:
            db.execute("UPDATE mirror_items SET etag = '' WHERE calendar_id = ?", (calendar_id,))
            db.execute("UPDATE mirrors SET sync_token = NULL WHERE calendar_id = ?", (calendar_id,))

    def skipped_items(self, calendar_id: str | None = None) -> list[dict[str, Any]]:
        if calendar_id is None:
            return self._rows("SELECT * FROM skipped_items ORDER BY calendar_id, href")
        return self._rows("SELECT * FROM skipped_items WHERE calendar_id = ? ORDER BY href", (calendar_id,))

    # --- appointments ------------------------------------------------------------------
