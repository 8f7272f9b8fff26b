"""Push tables: appointments and the durable outbox that carries their changes to iCloud."""

from __future__ import annotations

import time
from typing import Any

from calmirror.local.layout import APPOINTMENTS
from calmirror.model import (
    Appointment,
    OutboxRow,
    OutboxState,
    RemoteVersion,
    VersionConflict,
)
from calmirror.state.base import StateBase


class PushTables(StateBase):
    """Appointments, iCloud's versions of pushed ones, conflicts and the durable outbox."""

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

    def defer(self, row: OutboxRow, next_attempt: float) -> None:
        """Put a claimed row back untried (its account is held): no attempt is counted."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt = MAX(next_attempt, ?) "
                "WHERE collection = ? AND uid = ? AND state = 'in_flight'",
                (next_attempt, row.collection, row.uid),
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
