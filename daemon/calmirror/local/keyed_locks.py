"""One lock per name (an item's href, a UID), made when first asked for and dropped when free.

A client's PUT or DELETE of one item in `appointments/` or `blocked/` holds that collection's
lane shared (`store_lock`), so writes of different items go side by side; what must still go
one at a time is two writes of the same item (Radicale reads the old item, then replaces
it) and two new items with the same UID (Radicale's `has_uid`, then the upload). Each such
name gets its own lock here, kept only while someone holds or waits for it, so the table
stays as small as the writes in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}  # name -> (its lock, holders and waiters)

    def take(self, key: Hashable) -> Callable[[], None]:
        """Wait for `key`'s lock and take it; returns what gives it back (call it once)."""
        with self._mutex:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        lock.acquire()

        def give_back() -> None:
            with self._mutex:
                _, left = self._locks[key]
                if left == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, left - 1)
            lock.release()

        return give_back

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        give_back = self.take(key)
        try:
            yield
        finally:
            give_back()

    def __len__(self) -> int:
        """Names with a holder or a waiter, for tests."""
        with self._mutex:
            return len(self._locks)
