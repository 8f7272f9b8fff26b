"""One background thread taking work off a request's path, in the order it was queued.

The guard's warnings (`availability.guard.GuardNotes`) and its checks past the busy index's
horizon (`availability.far_checks.FarChecks`) both need the same thing: a client's PUT hands
something over and is answered at once, a thread of its own does it in order, a test or the
daemon's stop can wait until everything handed over so far is done, and a stop lets what is
queued finish first. One failed item is logged and never stops the next.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_STOP = object()


class Worker(Generic[T]):
    """Hands up to `batch` queued items at a time to `handle`, on a thread named `name`."""

    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], None],
        log: logging.Logger,
        failed: str,
        batch: int = 1,
    ) -> None:
        """`failed`: the log line when `handle` raises (%d: how many items it had)."""
        self.name = name
        self._handle = handle
        self._log = log
        self._failed = failed
        self._batch = batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def put(self, item: T) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            items = [first]
            stop = False
            while len(items) < self._batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                items.append(more)
            self._do(items)  # type: ignore[arg-type]  # everything but _STOP was put as a T
            if stop:
                return

    def _do(self, items: list[T]) -> None:
        try:
            self._handle(items)
        except Exception:  # one that fails must not stop the next
            self._log.exception(self._failed, len(items))
        finally:
            with self._idle:
                self._pending -= len(items)
                self._idle.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is done; False after `timeout` s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout)

    def close(self, timeout: float) -> bool:
        """Do what is queued, then stop; never started, it is done here in the caller's thread.
        False when the thread is still busy after `timeout` s (what is left is not done)."""
        with self._start:
            thread, self._thread = self._thread, None
        if thread is None:
            items: list[T] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    items.append(item)  # type: ignore[arg-type]
            if items:
                self._do(items)
            return True
        self._queue.put(_STOP)
        thread.join(timeout)
        return not thread.is_alive()
