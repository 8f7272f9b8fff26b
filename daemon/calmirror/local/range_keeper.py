"""Warming the time-range index of mirrors in the background after they change.

A mirror pass rewrites item files; the first client query afterwards would read each
changed item once to check the index, and parse every series the query spans to record
its occurrences (as long as Radicale's own answer). This keeper does that work soon after
a change instead: it waits until no change came for `settle_s` (the index trusts a file's stamp
only some time after its last change, `range_query.RACY_NS`), then warms each changed
mirror in short turns of the shared store lock. Answers never depend on it: a query checks
the index itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("calmirror.local")

#: (collection name, should stop) -> items recorded
Warm = Callable[[str, Callable[[], bool]], int]


class RangeKeeper:
    def __init__(self, warm: Warm, settle_s: float = 3.0) -> None:
        self.warm = warm
        self.settle_s = settle_s
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def mark_changed(self, collection: str) -> None:
        with self._lock:
            self._pending.add(collection)
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            while True:  # until no change for `settle_s` (a mirror pass writes batch after batch)
                self._wake.clear()
                if self._stopping.wait(self.settle_s):
                    return
                if not self._wake.is_set():
                    break
            with self._lock:
                pending, self._pending = sorted(self._pending), set()
            for collection in pending:
                if self._stopping.is_set():
                    return
                try:
                    recorded = self.warm(collection, self._stopping.is_set)
                except Exception:
                    log.warning("warming the time-range index of %s failed", collection, exc_info=True)
                else:
                    log.debug("time-range index of %s warm (%d series recorded)", collection, recorded)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
