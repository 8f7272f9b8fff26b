"""A few heavy reads compute at a time; writes and cheap reads never wait for them.

The daemon answers every client from one process, so every request thread shares one
interpreter lock. A client's PUT into `appointments/` holds that collection's lane through
some forty system calls, and each one gives the interpreter lock up; taking it back waits
for the threads computing meanwhile, and with twenty clients that was mostly one-week
calendar-queries (about 1,330 items each) and free-busy REPORTs: eight or nine of them at
once. The lane was then held ~38 ms per PUT where one PUT alone needs 2–7 ms, and every
other PUT of the collection queued behind it.

So a heavy read (a REPORT, a PROPFIND of a collection's members) first takes one of a few
places (`HeavyReads`, as many as the box has cores by default), in order of arrival, and
gives it back once its answer is built (sending it is not computing). The others wait
asleep, which costs the interpreter nothing. Writes and single-item reads skip the gate.
No read starves: places are handed out strictly first come, first served.

A read that waits inside its place rather than computing (a free-busy REPORT while the busy
index is being built, minutes at 100,000 events after an upgrade) steps aside
(`stepping_aside`): its place goes to the next read, and it takes the next free one back
ahead of later arrivals. Two such REPORTs would otherwise close the gate to every other
REPORT and PROPFIND, a client's sync included, for the whole build.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

HEAVY_METHODS = frozenset({"REPORT", "PROPFIND"})
_held = threading.local()  # the gate whose place this thread holds, if any


def is_heavy(method: str, depth: str) -> bool:
    """Whether a request computes over a whole collection: any REPORT, and a PROPFIND of a
    collection's members (`Depth: 1` or `infinity`; a missing Depth means infinity)."""
    if method == "REPORT":
        return True
    return method == "PROPFIND" and depth.strip() != "0"


def default_places() -> int:
    """One place per core: more computing threads than cores only take turns at the
    interpreter lock, and every turn is one the lane's holder waits for."""
    return max(1, os.cpu_count() or 1)


class HeavyReads:
    """A counting gate handing its places out in order of arrival (`threading.Semaphore`
    lets a newcomer take a place given back before a waiter wakes, so a waiter could wait
    behind any number of later arrivals)."""

    def __init__(self, places: int) -> None:
        if places < 1:
            raise ValueError("a gate needs at least one place")
        self.places = places
        self._mutex = threading.Lock()
        self._free = places
        self._waiting: deque[threading.Event] = deque()  # oldest first
        self.waited = 0  # reads that found every place taken, for tests and benchmarks
        self.asides = 0  # places given up for a wait (`stepping_aside`), likewise

    @property
    def busy(self) -> int:
        with self._mutex:
            return self.places - self._free

    @property
    def queued(self) -> int:
        with self._mutex:
            return len(self._waiting)

    @contextmanager
    def place(self) -> Iterator[None]:
        """One place for the block, after every read that arrived before."""
        with self._mutex:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                turn = None
            else:
                turn = threading.Event()
                self._waiting.append(turn)
                self.waited += 1
        if turn is not None:
            turn.wait()  # request threads are never interrupted: no leaving the queue
        _held.gate = self
        try:
            yield
        finally:
            _held.gate = None
            self._give_back()

    def _take_back(self) -> None:
        """A place again for a read that stepped aside: ahead of every waiter, since it
        arrived before them."""
        with self._mutex:
            if self._free > 0:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiting.appendleft(turn)
        turn.wait()

    def _give_back(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # the place passes straight to the oldest waiter
            else:
                self._free += 1


@contextmanager
def stepping_aside() -> Iterator[None]:
    """Around a wait that computes nothing: the calling thread's place (if it holds one) goes
    to the next heavy read meanwhile, and is taken back afterwards."""
    gate: HeavyReads | None = getattr(_held, "gate", None)
    if gate is None:
        yield
        return
    _held.gate = None
    gate.asides += 1
    gate._give_back()
    try:
        yield
    finally:
        gate._take_back()
        _held.gate = gate
