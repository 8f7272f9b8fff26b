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
from collections.abc import Callable

from calmirror.worker import Worker

log = logging.getLogger("calmirror.guard")


class FarChecks:
    """One thread running deferred checks in the order they came, started by the first."""

    def __init__(self) -> None:
        self._worker: Worker[Callable[[], object]] = Worker(
            "guard-far", _run, log, "%d double-booking check(s) past the busy index's horizon failed"
        )

    def submit(self, check: Callable[[], object]) -> None:
        self._worker.start()
        self._worker.put(check)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every check submitted so far has run; False after `timeout` s."""
        return self._worker.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the checks queued so far (a check not run by then is logged, not made)."""
        if not self._worker.close(timeout):
            log.warning("stopped with double-booking checks past the horizon still queued")


def _run(checks: list[Callable[[], object]]) -> None:
    for check in checks:  # one at a time (the worker's batch is 1)
        check()
