"""Guard checks waiting for the busy index's upkeep share one run of it instead of each running
it again, and every caller still sees every change announced before its call.

Real parts: a state database and a Radicale store on disk (`test_busy_index.world`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from calmirror.local.layout import APPOINTMENTS
from tests.unit.test_busy_index import BASE, Clock, world

UTC = dt.UTC


def booking(n: int) -> str:
    start = BASE + dt.timedelta(days=3, hours=n)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:b{n}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%S}Z\r\n"
        f"DTEND:{start + dt.timedelta(minutes=30):%Y%m%dT%H%M%S}Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_waiting_callers_share_one_run_and_see_what_came_before_them() -> None:
    clock = Clock(BASE.replace(tzinfo=UTC) - dt.timedelta(days=30))
    window = (BASE.replace(tzinfo=UTC), BASE.replace(tzinfo=UTC) + dt.timedelta(days=5))
    with world("UTC", clock) as busy:
        busy.upkeep.notified = True
        assert busy.upkeep.ensure()
        runs = busy.upkeep.runs
        seen: dict[int, set[str]] = {}

        def book_and_check(n: int) -> None:
            busy.store.write_appointment(f"b{n}.ics", booking(n))
            busy.mark_changed(APPOINTMENTS)  # as the server announces a write (the lock is busy: no wait)
            found = busy.occurrences(*window)
            assert found is not None
            seen[n] = {o.uid for o in found}

        with busy.upkeep.lock:  # a long run in progress: every caller queues behind it
            threads = [threading.Thread(target=book_and_check, args=(n,)) for n in range(6)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 10
            while len([t for t in threads if t.is_alive()]) and time.monotonic() < deadline:
                time.sleep(0.05)
                if all(f"b{n}.ics" in busy.store.items(APPOINTMENTS) for n in range(6)):
                    break
        for thread in threads:
            thread.join(30)

        assert all(f"b{n}" in seen[n] for n in range(6)), seen  # each saw its own booking
        assert busy.upkeep.runs - runs < 6  # and the six did not each run the upkeep again
        # A change after that run is followed by the next call.
        busy.store.write_appointment("b9.ics", booking(9))
        busy.mark_changed(APPOINTMENTS)
        found = busy.occurrences(*window)
        assert found is not None and "b9" in {o.uid for o in found}
