"""Writers first: a client's write is not held up by a stream of long reads.

Radicale's store lock is an `flock`, which prefers readers: a shared lock is granted
whenever only shared locks are held, even while a writer waits. PROPFIND (held for the
whole answer, see `middleware`) and REPORT hold the shared lock for tens of
milliseconds each, so a few clients reading back to back keep it held without a gap and
a PUT waited over a second (measured with four readers on two busy cores). Here a write
request announces itself before it asks for the lock, and a long read that has not
started yet waits until the writes announced before it are done, so the reads in flight
drain and the write gets in; a read never waits for a write that came after it.

One gate per store folder (`gate_for`), shared by everything in this process that
writes that store: the server's write requests announce themselves here, and so can any
other writer of the store. A read waits at most `max_wait_s`, a safety net only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WritersFirst:
    """Each long read waits for the writes announced before it arrived, not for later ones:
    waiting for every write would let a stream of writes starve the reads instead."""

    def __init__(self, max_wait_s: float = 2.0) -> None:
        self.max_wait_s = max_wait_s
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._writers: set[int] = set()  # tickets of the writes announced and not finished

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a request that takes the store lock exclusively."""
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._writers.add(ticket)
        try:
            yield
        finally:
            with self._changed:
                self._writers.discard(ticket)
                self._changed.notify_all()

    def before_reading(self) -> None:
        """Before a long read takes the shared lock: let the writes already waiting go first."""
        with self._changed:
            arrived = self._next_ticket
            self._changed.wait_for(lambda: all(ticket >= arrived for ticket in self._writers), self.max_wait_s)


_gates: dict[str, WritersFirst] = {}
_gates_lock = threading.Lock()


def gate_for(store_dir: Path) -> WritersFirst:
    """The one gate of the store in `store_dir` for this process."""
    key = os.path.realpath(store_dir)
    with _gates_lock:
        return _gates.setdefault(key, WritersFirst())
