"""Guard checks of bookings past the busy index's horizon, in mode "warn", off the request path.

Inside the horizon (a year back, two years ahead) a guard check is one range scan of the
index, about a millisecond. A booking past it needs the engine over every open-ended series
of every mirror (about 1,500 at 10,000 mirrored events: seconds of parsing, one such query
at a time in the process), and a client's PUT waited for that under the one interpreter lock.
In mode "warn" the check only records a warning, so the PUT need not wait: it is answered
at once and the check runs here, one after another, writing its decision as the guard would
(unless a newer version of the same appointment was decided meanwhile). Mode "reject" must
answer before the write, and still checks in the request. Nobody waits for a check here, so
it waits for a busy index being built (minutes at start on a large home) rather than giving
up after the request's few seconds and losing the warning.

A stop waits for these checks only as long as its grace allows; a check still running or
queued then would fail on the closed database and its warning be lost, and a crash loses
whatever is queued. So each booking is recorded in the state (`state/far_left.py`, through
`owe`) before its check is queued and cleared (`paid`) when the check has run; the next start
checks again every booking still recorded (`resume`), whether a stop or a crash left it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence

from calmirror.worker import Worker

log = logging.getLogger("calmirror.guard")

Booking = tuple[str, bytes]  # (uid, the body the client wrote)


class FarChecks:
    """One thread running deferred checks in the order they came, started by the first."""

    def __init__(self) -> None:
        self._worker: Worker[tuple[int, Callable[[], object]]] = Worker(
            "guard-far", self._run, log, "%d double-booking check(s) past the busy index's horizon failed"
        )
        self._keys = itertools.count()
        self._open: dict[int, Booking] = {}  # submitted and not yet done
        self._lock = threading.Lock()
        self._stopping = False
        self.again: Callable[[bytes], None] | None = None  # set by the guard: check a left booking again
        self.owe: Callable[[Booking], None] = lambda booking: None  # set by the guard: record it durably
        self.paid: Callable[[Booking], None] = lambda booking: None  # set by the guard: its check ran

    def submit(self, check: Callable[[], object], booking: Booking | None = None) -> None:
        key = next(self._keys)
        if booking is not None:
            self.owe(booking)  # before it is queued: a crash from here on leaves it owed
            with self._lock:
                self._open[key] = booking
        self._worker.start()
        self._worker.put((key, check))

    def resume(self, bookings: Sequence[Booking]) -> None:
        """Check again the bookings a stop or a crash left unchecked (their warnings are still
        owed); one the guard no longer checks (it is off now) is owed no longer."""
        if bookings and self.again is not None:
            log.info("checking %d booking(s) past the horizon left unchecked at the last stop", len(bookings))
            for booking in bookings:
                self.again(booking[1])
                with self._lock:
                    queued = booking in self._open.values()
                if not queued:
                    self.paid(booking)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every check submitted so far has run; False after `timeout` s."""
        return self._worker.flush(timeout)

    def close(self, timeout: float = 10.0) -> list[Booking]:
        """Stop after the checks queued so far, waiting at most `timeout` s; returns the
        bookings whose check did not finish (to be kept and checked at the next start)."""
        done = self._worker.close(timeout)
        with self._lock:
            self._stopping = True
            left = list(self._open.values())
        if not done or left:
            log.warning(
                "stopped with %d double-booking check(s) past the horizon unfinished: they run at the next start",
                len(left),
            )
        return left

    def _run(self, checks: list[tuple[int, Callable[[], object]]]) -> None:
        for key, check in checks:  # one at a time (the worker's batch is 1)
            try:
                check()
            except Exception:
                with self._lock:
                    if self._stopping and key in self._open:  # the state closed under it: kept for the next start
                        log.info("double-booking check of %s stopped with the daemon", self._open[key][0])
                        return
                    booking = self._open.pop(key, None)
                if booking is not None:
                    self.paid(booking)
                raise
            with self._lock:
                booking = None if self._stopping else self._open.pop(key, None)
            if booking is not None:
                self.paid(booking)
