"""Bookings whose double-booking check past the busy index's horizon (mode "warn") was still
running or queued when the daemon stopped: that check needs seconds, may outlast the stop's
grace, and its warning would be lost. They are kept here at the stop and checked again at
the next start (`availability.far_checks`)."""

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

    def take_far_checks(self) -> list[tuple[str, bytes]]:
        """Every booking left, oldest first, and none left after (one transaction): a stop
        during the checks made of them leaves them again."""
        with self.transaction() as db:
            rows = db.execute("SELECT uid, body FROM guard_far_left ORDER BY ts").fetchall()
            db.execute("DELETE FROM guard_far_left")
        return [(str(uid), bytes(body)) for uid, body in rows]
