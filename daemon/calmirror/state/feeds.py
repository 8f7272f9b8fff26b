"""The feeds table: subscribed ICS feeds, their polling schedule and conditional-GET validators.

What a feed's events are lives in the mirror tables under the calendar id `feed:<name>`, like
any mirrored calendar; this table holds only what is particular to fetching a feed.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlite_utils.db import NotFoundError

from calmirror.model import FeedRow
from calmirror.state.base import StateBase


def _feed_row(r: dict[str, Any]) -> FeedRow:
    return FeedRow(
        name=r["name"],
        url=r["url"],
        display=r["display"] or r["name"],
        interval=r["interval"] or 900.0,
        privacy=r["privacy"] or "full",
        allow_http=bool(r["allow_http"]),
        etag=r["etag"],
        last_modified=r["last_modified"],
        digest=r["digest"],
        next_poll=r["next_poll"] or 0.0,
        last_poll=r["last_poll"],
        last_error=r["last_error"],
        held_empty=bool(r["held_empty"]),
        requests=r["requests"] or 0,
    )


class FeedTables(StateBase):
    def feeds(self) -> list[FeedRow]:
        return [_feed_row(r) for r in self._rows("SELECT * FROM feeds ORDER BY name")]

    def feed(self, name: str) -> FeedRow | None:
        rows = self._rows("SELECT * FROM feeds WHERE name = ?", (name,))
        return _feed_row(rows[0]) if rows else None

    def add_feed(self, feed: FeedRow, calendar_id: str) -> None:
        """The feed and its (empty) mirror record, together: the mirror's slug is its calendar id."""
        with self.transaction() as db:
            db.table("feeds").insert(
                {**feed.__dict__, "allow_http": int(feed.allow_http), "held_empty": int(feed.held_empty)}, pk="name"
            )
            db.table("mirrors").upsert({"calendar_id": calendar_id, "slug": calendar_id}, pk="calendar_id")
            db.execute("INSERT OR REPLACE INTO calendar_names (id, name) VALUES (?, ?)", (calendar_id, feed.display))

    def update_feed(self, name: str, **fields: Any) -> None:
        for key in ("allow_http", "held_empty"):
            if key in fields:
                fields[key] = int(fields[key])
        with self.transaction() as db, contextlib.suppress(NotFoundError):  # removed meanwhile
            db.table("feeds").update(name, fields)

    def count_feed_requests(self, name: str, n: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE feeds SET requests = COALESCE(requests, 0) + ? WHERE name = ?", (n, name))

    def feed_failed(self, name: str, now: float) -> int:
        """One more failure in a row of feed `name`; how many there are now."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO feed_failures (name, failures, since) VALUES (?, 1, ?) "
                "ON CONFLICT (name) DO UPDATE SET failures = failures + 1",
                (name, now),
            )
            row = db.execute("SELECT failures FROM feed_failures WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def feed_failures(self, name: str) -> int:
        rows = self._rows("SELECT failures FROM feed_failures WHERE name = ?", (name,))
        return int(rows[0]["failures"]) if rows else 0

    def feed_answered(self, name: str) -> None:
        """Feed `name` answered: its backoff starts again from the interval."""
        with self.transaction() as db:
            db.execute("DELETE FROM feed_failures WHERE name = ?", (name,))

    def forget_feed(self, name: str, calendar_id: str) -> None:
        """The feed's own row and name; its mirror rows go first, with `forget_mirror`."""
        with self.transaction() as db:
            db.execute("DELETE FROM feeds WHERE name = ?", (name,))
            db.execute("DELETE FROM feed_failures WHERE name = ?", (name,))
            db.execute("DELETE FROM calendar_names WHERE id = ?", (calendar_id,))
