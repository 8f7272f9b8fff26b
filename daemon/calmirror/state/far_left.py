"""Bookings whose double-booking check past the busy index's horizon (mode "warn") is owed:
that check runs off the request, needs seconds and may outlast a stop's grace, and a crash
loses what is queued. Each booking is kept here from the moment its check is queued until the
check has run, and the next start checks again every one still here (`availability.far_checks`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from calmirror.state.base import StateBase


class FarLeftTables(StateBase):
    def leave_far_checks(self, bookings: Sequence[tuple[str, bytes]]) -> None:
        """(uid, the body the client wrote); a later one of the same UID replaces an earlier."""
        if not bookings:
            return
        with self.transaction() as db:
            for uid, body in bookings:
                db.execute(
                    "INSERT INTO guard_far_left (uid, body, ts) VALUES (?, ?, ?) "
                    "ON CONFLICT (uid) DO UPDATE SET body = excluded.body, ts = excluded.ts",
                    (uid, body, time.time()),
                )

    def far_checks_owed(self) -> list[tuple[str, bytes]]:
        """Every booking whose check is owed, oldest first; each stays until `far_check_done`."""
        with self._lock:
            rows = self.db.execute("SELECT uid, body FROM guard_far_left ORDER BY ts").fetchall()
        return [(str(uid), bytes(body)) for uid, body in rows]

    def far_check_done(self, uid: str, body: bytes) -> None:
        """The check of this version ran: no longer owed (a later version of the UID still is)."""
        with self.transaction() as db:
            db.execute("DELETE FROM guard_far_left WHERE uid = ? AND body = ?", (uid, body))
