"""The state database: the only package that touches SQLite.

Everything calmirror must remember across a crash lives here: the connected account, the
remote calendars, sync tokens, the item maps of mirrors and appointments, and the durable
outbox. WAL with synchronous=FULL makes a committed outbox row survive power loss. One
connection is shared by the daemon's threads behind a lock; SQLite serialises writers
anyway and every transaction here is short.

`State` is put together from one module per group of tables: `accounts` (accounts and
their calendars), `addresses` (the addresses a server names for the user), `mirrors`
(item maps with iCloud's exact text; `mirror_view` reads one as the planners see it),
`push` (appointments and the outbox), `feeds`, `busy` and `busy_far` (the busy index, and
years past its horizon), `ranges` (the time-range index of mirrors). `base` holds the
connection, `schema` the tables, their version and upgrades.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from calmirror.model import CalendarRow, EventRow, GuardNote, component_kinds
from calmirror.state.accounts import AccountTables
from calmirror.state.addresses import AddressTables
from calmirror.state.far_left import FarLeftTables
from calmirror.state.feeds import FeedTables
from calmirror.state.mirrors import MirrorTables
from calmirror.state.push import PushTables
from calmirror.state.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "State"]


class State(AccountTables, AddressTables, MirrorTables, PushTables, FeedTables, FarLeftTables):
    """Calendars, events and guard warnings here; accounts, mirrors, pushes and feeds in their own tables' modules."""

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

    def apply_guard_warnings(self, changes: Sequence[tuple[str, GuardNote | None]]) -> None:
        """The guard's decisions in order, in one transaction: a note set or replaces the UID's
        warning, None clears it. Nothing is committed when nothing changes (the usual case: an
        appointment let through that had no warning)."""
        if not changes:
            return
        with self._lock:
            if (
                all(note is None for _uid, note in changes)
                and not self.db.execute(
                    "SELECT 1 FROM guard_warnings WHERE uid IN (SELECT value FROM json_each(?)) LIMIT 1",
                    (json.dumps([uid for uid, _note in changes]),),
                ).fetchone()
            ):
                return
            with self.transaction() as db:
                for uid, note in changes:
                    if note is None:
                        db.execute("DELETE FROM guard_warnings WHERE uid = ?", (uid,))
                    else:
                        db.execute(
                            'INSERT INTO guard_warnings (uid, summary, start, "end", ts) VALUES (?, ?, ?, ?, ?) '
                            "ON CONFLICT (uid) DO UPDATE SET summary = excluded.summary, start = excluded.start, "
                            '"end" = excluded."end", ts = excluded.ts',
                            (uid, note.summary, note.start, note.end, note.ts),
                        )

    def guard_warnings(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM guard_warnings ORDER BY ts DESC")
