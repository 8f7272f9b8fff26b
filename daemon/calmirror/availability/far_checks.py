"""Guard checks of bookings past the busy index's horizon, in mode "warn", off the request path.

Inside the horizon (a year back, two years ahead) a guard check is one range scan of the
index, about a millisecond. A booking past it needs the engine over every open-ended series
of every mirror (about 1,500 at 10,000 mirrored events: seconds of parsing, one such query
at a time in the process), and a client's PUT waited for that under the one interpreter lock.
In mode "warn" the check only records a warning, so the PUT need not wait: it is answered
at once and the check runs here, one after another, writing its decision as the guard would
(unless a newer version of the same appointment was decided meanwhile). Mode "reject" must
answer before the write, and still checks in the request.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("calmirror.guard")


class FarChecks:
    """One thread running deferred checks in the order they came."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, check: Callable[[], object]) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="guard-far", daemon=True)
                self._thread.start()
        with self._idle:
            self._pending += 1
        self._queue.put(check)

    def _run(self) -> None:
        while (check := self._queue.get()) is not None:
            try:
                check()
            except Exception:  # one check that fails must not stop the next
                log.exception("a double-booking check past the busy index's horizon failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every check submitted so far has run; False after `timeout` s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the checks queued so far (a check not run by then is logged, not made)."""
        with self._start:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("stopped with double-booking checks past the horizon still queued")
