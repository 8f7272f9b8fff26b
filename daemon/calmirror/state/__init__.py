"""The state database: the only package that touches SQLite.

Everything calmirror must remember across a crash lives here: the connected account, the
remote calendars, sync tokens, the item maps of mirrors and appointments, and the durable
outbox. WAL with synchronous=FULL makes a committed outbox row survive power loss. One
connection is shared by the daemon's threads behind a lock; SQLite serialises writers
anyway and every transaction here is short.
"""

from __future__ import annotations

import json
import time
from typing import Any

from calmirror.model import Account, CalendarRow, EventRow, component_kinds
from calmirror.state.mirrors import MirrorTables
from calmirror.state.push import PushTables
from calmirror.state.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "State"]


class State(MirrorTables, PushTables):
    """Account, calendars, events and guard warnings here; mirrors and pushes in their own tables' modules."""

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
            db.execute("DELETE FROM meta WHERE key LIKE 'health%' OR key LIKE 'mirror_clean:%'")

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
