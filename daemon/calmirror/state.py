"""The state database: the only module that touches SQLite.

Everything calmirror must remember across a crash lives here: the connected account, the
remote calendars, sync tokens, the item maps of mirrors and appointments, and the durable
outbox. WAL with synchronous=FULL makes a committed outbox row survive power loss. One
connection is shared by the daemon's threads behind a lock; SQLite serialises writers
anyway and every transaction here is short.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from calmirror.errors import LocalError
from calmirror.local.layout import APPOINTMENTS
from calmirror.model import (
    COPY_KINDS,
    Account,
    Appointment,
    CalendarRow,
    EventRow,
    MirrorEntry,
    MirrorRow,
    MirrorTexts,
    OutboxRow,
    OutboxState,
    RemoteVersion,
    VersionConflict,
    component_kinds,
)

SCHEMA_VERSION = 3

# Columns added in version 2 (the exact-text store), with the SQL type each gets when an
# existing version-1 database is upgraded.
_V2_COLUMNS = {
    "mirror_items": {"body": "TEXT", "copy": "TEXT", "reason": "TEXT", "gen": "INTEGER", "horizon": "TEXT"},
    "mirrors": {"generation": "INTEGER"},
}


def _create_schema(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("account").create(
        {"id": int, "apple_id": str, "server": str, "principal_url": str, "home_url": str, "connected_at": float},
        pk="id",
        if_not_exists=True,
    )
    db.table("calendars").create(
        {"id": str, "url": str, "name": str, "color": str, "components": str, "writable": int},
        pk="id",
        if_not_exists=True,
    )
    # The last name seen for every calendar ever listed: a calendar deleted in iCloud leaves
    # `calendars`, but status still names its mirror and the appointments waiting for it.
    db.table("calendar_names").create({"id": str, "name": str}, pk="id", if_not_exists=True)
    db.table("mirrors").create(
        {
            "calendar_id": str,
            "slug": str,
            "sync_token": str,
            "last_sync": float,
            "last_attempt": float,
            "last_error": str,
            "item_count": int,
            "skipped": int,
            "held_empty": int,
            "generation": int,
        },
        pk="calendar_id",
        if_not_exists=True,
    )
    # `body` is iCloud's exact text of the resource: busy time is computed from it whether or
    # not Radicale took it. `gen` is the calendar's `generation` when the row was written, so
    # a cache asks only for what changed since it last looked.
    db.table("mirror_items").create(
        {
            "calendar_id": str,
            "href": str,
            "etag": str,
            "uid": str,
            "local_href": str,
            "body": str,
            "copy": str,
            "reason": str,
            "gen": int,
            "horizon": str,
        },
        pk=("calendar_id", "href"),
        if_not_exists=True,
    )
    db.table("skipped_items").create(
        {"calendar_id": str, "href": str, "reason": str, "seen_at": float},
        pk=("calendar_id", "href"),
        if_not_exists=True,
    )
    db.table("appointments").create(
        {
            "uid": str,
            "local_href": str,
            "local_etag": str,
            "remote_calendar": str,
            "remote_href": str,
            "remote_etag": str,
            "pushed_etag": str,
        },
        pk="uid",
        if_not_exists=True,
    )
    db.table("outbox").create(
        {
            "collection": str,
            "uid": str,
            "seq": int,
            "state": str,
            "attempts": int,
            "next_attempt": float,
            "last_error": str,
            "enqueued_at": float,
            "updated_at": float,
        },
        pk=("collection", "uid"),
        if_not_exists=True,
    )
    db.table("events").create(
        {"id": int, "ts": float, "level": str, "kind": str, "message": str}, pk="id", if_not_exists=True
    )
    db.table("guard_warnings").create(
        {"uid": str, "summary": str, "start": str, "end": str, "ts": float}, pk="uid", if_not_exists=True
    )
    # Version 3: iCloud's version of a pushed appointment while it differs from the last
    # agreed one (busy time counts it; two-way brings it into appointments/), and the
    # versions a conflict overrode, kept so that neither side's change is lost silently.
    db.table("remote_versions").create(
        {
            "uid": str,
            "calendar_id": str,
            "href": str,
            "etag": str,
            "body": str,
            "seen_at": float,
            "applying": str,
        },
        pk="uid",
        if_not_exists=True,
    )
    db.table("version_conflicts").create(
        {"id": int, "uid": str, "local_body": str, "remote_body": str, "reason": str, "ts": float},
        pk="id",
        if_not_exists=True,
    )
    db.execute("CREATE INDEX IF NOT EXISTS mirror_items_uid ON mirror_items(uid)")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt)")
    db.execute("CREATE INDEX IF NOT EXISTS appointments_local ON appointments(local_href)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _upgrade_from_1(db: sqlite_utils.Database) -> None:
    """Version 1 kept no texts: add the columns, then forget every mirror's ETags and token so
    the next pass fetches each resource once and fills the store (the map still knows the
    local copies, so deletions in between are applied)."""
    for table, columns in _V2_COLUMNS.items():
        have = {column.name for column in db.table(table).columns}
        for name, kind in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    db.execute("UPDATE mirror_items SET etag = '', copy = 'exact', gen = 0")
    db.execute("UPDATE mirrors SET sync_token = NULL, generation = 0")


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


def _enable_wal(conn: sqlite3.Connection, patience_s: float = 30.0) -> None:
    """Switching a new database to WAL needs it to itself, and SQLite answers "locked" at once
    instead of waiting when another process is opening it at the same moment: retry."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class State:
    def __init__(self, path: Path) -> None:
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA busy_timeout=30000")
            _enable_wal(conn)
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
                    _upgrade_from_1(self.db)
                _create_schema(self.db)
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

    def account(self) -> Account | None:
        rows = self._rows("SELECT * FROM account WHERE id = 1")
        if not rows:
            return None
        r = rows[0]
        return Account(r["apple_id"], r["server"], r["principal_url"], r["home_url"], r["connected_at"])

    def set_account(self, account: Account) -> None:
        with self.transaction() as db:
            db.table("account").upsert({"id": 1, **account.__dict__}, pk="id")

    def forget_account(self) -> None:
        """Drop the connection and everything learnt from iCloud; appointments stay."""
        with self.transaction() as db:
            for table in ("account", "calendars", "calendar_names", "mirrors", "mirror_items", "skipped_items"):
                db.execute(f"DELETE FROM {table}")
            db.execute(
                "UPDATE appointments SET remote_calendar = NULL, remote_href = NULL, "
                "remote_etag = NULL, pushed_etag = NULL"
            )
            db.execute("DELETE FROM remote_versions")
            db.execute("DELETE FROM meta WHERE key LIKE 'health%'")

    def set_calendars(self, calendars: list[CalendarRow]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO calendar_names (id, name) SELECT id, name FROM calendars")
            db.execute("DELETE FROM calendars")
            db.table("calendars").insert_all(
                [
                    {
                        "id": c.id,
                        "url": c.url,
                        "name": c.name,
                        "color": c.color,
                        "components": ",".join(c.components),
                        "writable": int(c.writable),
                    }
                    for c in calendars
                ],
                pk="id",
            )

    def move_home(self, account: Account, calendars: list[CalendarRow]) -> None:
        """Store a re-discovered account and its calendars; when the home moved, every stored
        iCloud URL under the old home moves with it (mirror items, skipped items,
        appointments, their iCloud versions), so nothing looks deleted and re-added. One
        transaction."""
        with self.transaction() as db:
            current = self.account()
            old, new = (current.home_url if current else ""), account.home_url
            if old and old != new:
                # A new generation for every mirror, so caches of the texts (keyed by href)
                # read them all again under the new hrefs instead of dropping the old ones.
                row = db.execute("SELECT value FROM meta WHERE key = 'text_generation'").fetchone()
                generation = (json.loads(row[0]) if row else 0) + 1
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('text_generation', ?)", (json.dumps(generation),)
                )
                db.execute("UPDATE mirror_items SET gen = ?", (generation,))
                db.execute("UPDATE mirrors SET generation = ?", (generation,))
                for table, column in (
                    ("mirror_items", "href"),
                    ("skipped_items", "href"),
                    ("appointments", "remote_href"),
                    ("appointments", "remote_calendar"),
                    ("remote_versions", "href"),
                ):
                    db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                        (new, len(old) + 1, len(old), old),
                    )
            db.table("account").upsert({"id": 1, **account.__dict__}, pk="id")
            self.set_calendars(calendars)

    def calendar_names(self) -> dict[str, str]:
        """Calendar id -> name, for the calendars listed now and the last name of those gone."""
        names = {r["id"]: r["name"] for r in self._rows("SELECT id, name FROM calendar_names")}
        names.update((r["id"], r["name"]) for r in self._rows("SELECT id, name FROM calendars"))
        return names

    def calendars(self) -> list[CalendarRow]:
        return [
            CalendarRow(
                r["id"],
                r["url"],
                r["name"],
                r["color"],
                component_kinds((r["components"] or "").split(",")),
                bool(r["writable"]),
            )
            for r in self._rows("SELECT * FROM calendars ORDER BY name")
        ]

    # --- mirrors -----------------------------------------------------------------------

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

    def mirror_items(self, calendar_id: str) -> dict[str, MirrorEntry]:
        """The item map, without the texts."""
        return {
            r["href"]: MirrorEntry(
                r["href"],
                r["etag"],
                r["uid"],
                r["local_href"],
                r["copy"] or "exact",
                r["reason"] or "",
                None,
                r["horizon"] or "",
            )
            for r in self._rows(
                "SELECT href, etag, uid, local_href, copy, reason, horizon FROM mirror_items WHERE calendar_id = ?",
                (calendar_id,),
            )
        }

    def apply_mirror_map(
        self,
        calendar_id: str,
        upserts: list[MirrorEntry],
        deletes: list[str],
        skipped: dict[str, str],
        *,
        replace: bool,
        **mirror_fields: Any,
    ) -> None:
        """Record what one batch did, the exact texts it fetched, and the new token, in one
        transaction; the calendar's generation moves on so caches of the texts see the change."""
        now = time.time()
        with self.transaction() as db:
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
            for href in deletes:
                db.execute("DELETE FROM mirror_items WHERE calendar_id = ? AND href = ?", (calendar_id, href))
                db.execute("DELETE FROM skipped_items WHERE calendar_id = ? AND href = ?", (calendar_id, href))
            if upserts:
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
                            e.body,
                            e.copy,
                            e.reason,
                            generation,
                            e.horizon,
                        )
                        for e in upserts
                    ],
                )
                db.conn.executemany(
                    "DELETE FROM skipped_items WHERE calendar_id = ? AND href = ?",
                    [(calendar_id, e.href) for e in upserts],
                )
            if skipped:
                db.table("skipped_items").upsert_all(
                    [{"calendar_id": calendar_id, "href": h, "reason": r, "seen_at": now} for h, r in skipped.items()],
                    pk=("calendar_id", "href"),
                )
            count = db.execute("SELECT COUNT(*) FROM mirror_items WHERE calendar_id = ?", (calendar_id,)).fetchone()[0]
            nskipped = db.execute(
                "SELECT COUNT(*) FROM skipped_items WHERE calendar_id = ?", (calendar_id,)
            ).fetchone()[0]
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

    # --- the exact-text store ----------------------------------------------------------

    def mirror_texts(self, calendar_id: str) -> dict[str, str]:
        """href -> iCloud's exact text of every resource of the calendar that has one
        (whatever the local mirror holds for it)."""
        return {
            r["href"]: r["body"]
            for r in self._rows(
                "SELECT href, body FROM mirror_items WHERE calendar_id = ? AND body IS NOT NULL", (calendar_id,)
            )
        }

    def mirror_generation(self, calendar_id: str) -> int:
        """Moves on with every batch recorded for the calendar; 0 for an unknown calendar."""
        rows = self._rows("SELECT generation FROM mirrors WHERE calendar_id = ?", (calendar_id,))
        return int(rows[0]["generation"] or 0) if rows else 0

    def mirror_texts_since(self, calendar_id: str, generation: int | None) -> MirrorTexts:
        """What a cache holding the texts of `generation` (None: nothing) must change.

        Costs one indexed query when nothing changed, and otherwise a listing of hrefs plus
        the texts written since: a warm cache re-parses only changed resources.
        """
        with self._lock:
            now = self.mirror_generation(calendar_id)
            if generation is not None and now == generation:
                return MirrorTexts(now, {}, None)
            since = -1 if generation is None or generation > now else generation
            present: set[str] = set()
            texts: dict[str, str] = {}
            for row in self.db.execute(
                "SELECT href, gen, CASE WHEN gen > ? THEN body END FROM mirror_items "
                "WHERE calendar_id = ? AND body IS NOT NULL",
                (since, calendar_id),
            ):
                present.add(row[0])
                if row[2] is not None:
                    texts[row[0]] = row[2]
            return MirrorTexts(now, texts, frozenset(present))

    def copy_counts(self, calendar_id: str) -> dict[str, dict[str, int]]:
        """How many resources the mirror holds in each form, and why: kind -> reason -> count
        (reason "" for exact copies). Unreadable ones are the skipped items."""
        counts: dict[str, dict[str, int]] = {kind: {} for kind in (*COPY_KINDS, "unreadable")}
        for r in self._rows(
            "SELECT COALESCE(copy, 'exact') AS kind, COALESCE(reason, '') AS reason, COUNT(*) AS n "
            "FROM mirror_items WHERE calendar_id = ? GROUP BY kind, reason",
            (calendar_id,),
        ):
            counts.setdefault(r["kind"], {})[r["reason"]] = r["n"]
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

    def appointment(self, uid: str) -> Appointment | None:
        rows = self._rows("SELECT * FROM appointments WHERE uid = ?", (uid,))
        return Appointment(**rows[0]) if rows else None

    def appointments(self) -> dict[str, Appointment]:
        return {r["uid"]: Appointment(**r) for r in self._rows("SELECT * FROM appointments")}

    def appointment_uids(self) -> frozenset[str]:
        return frozenset(r["uid"] for r in self._rows("SELECT uid FROM appointments"))

    def update_appointment(self, uid: str, **fields: Any) -> None:
        with self.transaction() as db:
            db.table("appointments").upsert({"uid": uid, **fields}, pk="uid")

    def forget_appointment(self, uid: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM appointments WHERE uid = ?", (uid,))
            db.execute("DELETE FROM remote_versions WHERE uid = ?", (uid,))

    def agree(self, uid: str, **fields: Any) -> None:
        """Both sides hold the same version again (a push landed, or iCloud's change was
        brought into appointments/): record it and drop the differing iCloud version, in one
        transaction."""
        with self.transaction() as db:
            db.table("appointments").upsert({"uid": uid, **fields}, pk="uid")
            db.execute("DELETE FROM remote_versions WHERE uid = ?", (uid,))

    # --- iCloud's versions of pushed appointments ----------------------------------------

    def remote_version(self, uid: str) -> RemoteVersion | None:
        rows = self._rows("SELECT * FROM remote_versions WHERE uid = ?", (uid,))
        return RemoteVersion(**rows[0]) if rows else None

    def remote_versions(self) -> list[RemoteVersion]:
        return [RemoteVersion(**r) for r in self._rows("SELECT * FROM remote_versions ORDER BY seen_at")]

    def differing_remote_versions(self) -> list[RemoteVersion]:
        """iCloud's versions that still differ from what was last pushed or agreed (an ETag
        equal to the recorded one is our own write, seen before its answer was recorded)."""
        return [
            RemoteVersion(**r)
            for r in self._rows(
                "SELECT v.* FROM remote_versions v JOIN appointments a ON a.uid = v.uid "
                "WHERE a.remote_etag IS NULL OR a.remote_etag != v.etag ORDER BY v.seen_at"
            )
        ]

    def set_remote_version(self, version: RemoteVersion) -> None:
        with self.transaction() as db:
            db.table("remote_versions").upsert(version.__dict__, pk="uid")

    def drop_remote_version(self, uid: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM remote_versions WHERE uid = ?", (uid,))

    def add_conflict(self, uid: str, local_body: str, remote_body: str | None, reason: str, keep: int = 200) -> None:
        """Keep the version a change on both sides overrode; the oldest beyond `keep` go."""
        with self.transaction() as db:
            db.table("version_conflicts").insert(
                {"uid": uid, "local_body": local_body, "remote_body": remote_body, "reason": reason, "ts": time.time()}
            )
            db.execute("DELETE FROM version_conflicts WHERE id <= (SELECT MAX(id) FROM version_conflicts) - ?", (keep,))

    def conflicts(self) -> list[VersionConflict]:
        return [VersionConflict(**r) for r in self._rows("SELECT * FROM version_conflicts ORDER BY id DESC")]

    def clear_conflicts(self, uid: str | None = None) -> int:
        with self.transaction() as db:
            if uid is None:
                return db.execute("DELETE FROM version_conflicts").rowcount
            return db.execute("DELETE FROM version_conflicts WHERE uid = ?", (uid,)).rowcount

    # --- outbox ------------------------------------------------------------------------

    def enqueue(self, uid: str, collection: str = APPOINTMENTS, *, now: float | None = None) -> None:
        """Record the intent to bring `uid` to iCloud; repeated edits collapse into one row.

        The sequence number lets a worker finishing an older version notice that a newer
        edit arrived meanwhile, so that edit is not marked done by mistake.
        """
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute(
                "INSERT INTO outbox (collection, uid, seq, state, attempts, next_attempt, last_error, "
                "enqueued_at, updated_at) VALUES (?, ?, 1, 'pending', 0, ?, NULL, ?, ?) "
                "ON CONFLICT(collection, uid) DO UPDATE SET seq = seq + 1, state = 'pending', "
                "attempts = CASE WHEN state IN ('done', 'failed') THEN 0 ELSE attempts END, "
                "next_attempt = CASE WHEN state IN ('done', 'failed') THEN excluded.next_attempt "
                "ELSE next_attempt END, "
                "enqueued_at = CASE WHEN state IN ('done', 'failed') THEN excluded.enqueued_at "
                "ELSE enqueued_at END, last_error = NULL, updated_at = excluded.updated_at",
                (collection, uid, now, now, now),
            )

    def recover_in_flight(self) -> int:
        """Rows a crash left in flight are pending again: their write may or may not have landed,
        and the writes are idempotent (deterministic href, ETag preconditions)."""
        with self.transaction() as db:
            return db.execute("UPDATE outbox SET state = 'pending' WHERE state = 'in_flight'").rowcount

    def claim(self, now: float, limit: int = 1) -> list[OutboxRow]:
        with self.transaction() as db:
            rows = [
                dict(r)
                for r in db.query(
                    "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt <= ? "
                    "ORDER BY next_attempt, enqueued_at LIMIT ?",
                    (now, limit),
                )
            ]
            for r in rows:
                db.execute(
                    "UPDATE outbox SET state = 'in_flight', updated_at = ? WHERE collection = ? AND uid = ?",
                    (now, r["collection"], r["uid"]),
                )
        return [
            OutboxRow(
                r["uid"],
                r["collection"],
                r["seq"],
                "in_flight",
                r["attempts"],
                r["next_attempt"],
                r["last_error"],
                r["enqueued_at"],
            )
            for r in rows
        ]

    def finish(self, row: OutboxRow, *, now: float | None = None) -> bool:
        """Mark done unless a newer edit arrived; returns whether it was marked done."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = NULL, "
                "updated_at = ? WHERE collection = ? AND uid = ? AND seq = ?",
                (now, row.collection, row.uid, row.seq),
            )
            if cur.rowcount == 0:
                db.execute(
                    "UPDATE outbox SET state = 'pending' WHERE collection = ? AND uid = ? AND state = 'in_flight'",
                    (row.collection, row.uid),
                )
            return bool(cur.rowcount)

    def retry_later(self, row: OutboxRow, next_attempt: float, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', attempts = attempts + 1, next_attempt = ?, "
                "last_error = ?, updated_at = ? WHERE collection = ? AND uid = ?",
                (next_attempt, error, time.time(), row.collection, row.uid),
            )

    def fail(self, row: OutboxRow, reason: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = CASE WHEN seq = ? THEN 'failed' ELSE 'pending' END, "
                "attempts = attempts + 1, last_error = ?, updated_at = ? WHERE collection = ? AND uid = ?",
                (row.seq, reason, time.time(), row.collection, row.uid),
            )

    def requeue_failed(self) -> int:
        with self.transaction() as db:
            return db.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = 0, "
                "last_error = NULL WHERE state = 'failed'"
            ).rowcount

    def hold_pending_until(self, when: float) -> None:
        """Push back every due row, e.g. after a 503 with Retry-After for the whole account."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET next_attempt = MAX(next_attempt, ?) WHERE state = 'pending'", (when,))

    def retry_pending_now(self) -> int:
        """Make every waiting row due at once, e.g. after a new config (another linked calendar)
        may have removed what held them; account-wide holds (Retry-After, 401) live elsewhere."""
        with self.transaction() as db:
            return db.execute("UPDATE outbox SET next_attempt = 0 WHERE state = 'pending'").rowcount

    def outbox(self, states: tuple[OutboxState, ...] = ("pending", "in_flight", "failed")) -> list[OutboxRow]:
        marks = ",".join("?" for _ in states)
        return [
            OutboxRow(
                r["uid"],
                r["collection"],
                r["seq"],
                r["state"],
                r["attempts"],
                r["next_attempt"],
                r["last_error"],
                r["enqueued_at"],
            )
            for r in self._rows(f"SELECT * FROM outbox WHERE state IN ({marks}) ORDER BY enqueued_at", states)
        ]

    def next_due(self) -> float | None:
        rows = self._rows("SELECT MIN(next_attempt) AS t FROM outbox WHERE state = 'pending'")
        return rows[0]["t"] if rows and rows[0]["t"] is not None else None

    # --- events shown by status ----------------------------------------------------------

    def record_event(self, level: str, kind: str, message: str, keep: int = 200) -> None:
        with self.transaction() as db:
            db.table("events").insert({"ts": time.time(), "level": level, "kind": kind, "message": message})
            db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (keep,))

    def events(self, limit: int = 10, levels: tuple[str, ...] = ("warning", "error")) -> list[EventRow]:
        marks = ",".join("?" for _ in levels)
        return [
            EventRow(**r)
            for r in self._rows(
                f"SELECT * FROM events WHERE level IN ({marks}) ORDER BY id DESC LIMIT ?", (*levels, limit)
            )
        ]

    def add_guard_warning(self, uid: str, summary: str, start: str, end: str) -> None:
        with self.transaction() as db:
            db.table("guard_warnings").upsert(
                {"uid": uid, "summary": summary, "start": start, "end": end, "ts": time.time()}, pk="uid"
            )

    def guard_warnings(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM guard_warnings ORDER BY ts DESC")

    def clear_guard_warning(self, uid: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM guard_warnings WHERE uid = ?", (uid,))
