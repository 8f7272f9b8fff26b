"""The in-process store lock: a waiting writer stops new readers, readers are not starved,
writers go in order, a thread's nested shared lock never waits, and all of it holds for
Radicale's real storage objects sharing one store folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from calmirror.local.radicale_config import build_configuration
from calmirror.local.storage import FairLockStorage
from calmirror.local.store_lock import FairLock, LockUpgrade, lock_for


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """The lock's own counters say when a thread is waiting inside it (no event is set there)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the lock's state")
        time.sleep(0.001)


class Holder:
    """A thread that takes a lock, says so, and gives it back when told."""

    def __init__(self, name: str, take: Callable[[], AbstractContextManager[object]], order: list[str]) -> None:
        self.name = name
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._take, self._order = take, order
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self._take():
                self._order.append(self.name)
                self.entered.set()
                self.release.wait(10)
        except BaseException as error:  # surfaced by the test
            self.error = error
            self.entered.set()

    def start(self) -> Holder:
        self.thread.start()
        return self

    def finish(self) -> None:
        self.release.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        assert self.error is None


@pytest.fixture
def lock() -> FairLock:
    return FairLock()


def test_a_waiting_writer_stops_new_readers(lock: FairLock) -> None:
    order: list[str] = []
    first = Holder("reader 1", lambda: lock.hold("r"), order).start()
    assert first.entered.wait(5)
    writer = Holder("writer", lambda: lock.hold("w"), order).start()
    wait_until(lambda: lock.waiting_writers == 1)
    second = Holder("reader 2", lambda: lock.hold("r"), order).start()
    wait_until(lambda: lock.readers_waiting == 1)
    assert not second.entered.is_set()  # flock would have let it in beside reader 1
    first.finish()
    assert writer.entered.wait(5)
    assert not second.entered.is_set()
    writer.finish()
    assert second.entered.wait(5)
    second.finish()
    assert order == ["reader 1", "writer", "reader 2"]


def test_readers_waiting_for_a_writer_go_before_the_next_writer(lock: FairLock) -> None:
    order: list[str] = []
    first = Holder("writer 1", lambda: lock.hold("w"), order).start()
    assert first.entered.wait(5)
    readers = [Holder(f"reader {n}", lambda: lock.hold("r"), order).start() for n in (1, 2)]
    wait_until(lambda: lock.readers_waiting == 2)
    second = Holder("writer 2", lambda: lock.hold("w"), order).start()
    wait_until(lambda: lock.waiting_writers == 1)
    first.finish()
    for reader in readers:
        assert reader.entered.wait(5)
    assert not second.entered.is_set()
    for reader in readers:
        reader.finish()
    assert second.entered.wait(5)
    second.finish()
    assert order[0] == "writer 1" and sorted(order[1:3]) == ["reader 1", "reader 2"] and order[3] == "writer 2"


def test_writers_go_in_order_of_arrival(lock: FairLock) -> None:
    order: list[str] = []
    reader = Holder("reader", lambda: lock.hold("r"), order).start()
    assert reader.entered.wait(5)
    writers = []
    for n in range(4):
        writers.append(Holder(f"writer {n}", lambda: lock.hold("w"), order).start())
        wait_until(lambda n=n: lock.waiting_writers == n + 1)
    reader.finish()
    for writer in writers:
        assert writer.entered.wait(5)
        writer.finish()
    assert order == ["reader"] + [f"writer {n}" for n in range(4)]


def test_a_nested_shared_lock_does_not_wait_behind_a_writer(lock: FairLock) -> None:
    order: list[str] = []
    nested = threading.Event()
    proceed = threading.Event()

    def reader() -> None:
        with lock.hold("r"):
            order.append("outer")
            proceed.wait(5)
            with lock.hold("r"):  # Radicale's own shared lock inside the middleware's
                order.append("inner")
                nested.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    wait_until(lambda: lock.readers == 1)
    writer = Holder("writer", lambda: lock.hold("w"), order).start()
    wait_until(lambda: lock.waiting_writers == 1)
    proceed.set()
    assert nested.wait(5)
    thread.join(5)
    assert writer.entered.wait(5)
    writer.finish()
    assert order == ["outer", "inner", "writer"]


def test_an_upgrade_is_refused_not_a_deadlock(lock: FairLock) -> None:
    with lock.hold("r"), pytest.raises(LockUpgrade), lock.hold("w"):
        pass
    with lock.hold("w"):  # and the lock is free again afterwards
        assert lock.readers == 0


def test_a_writer_that_stops_waiting_lets_the_others_through(lock: FairLock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiting writer interrupted (an exception in its wait) must not hold its turn forever."""
    order: list[str] = []
    reader = Holder("reader 1", lambda: lock.hold("r"), order).start()
    assert reader.entered.wait(5)

    class Interrupted(Exception):
        pass

    original = threading.Condition.wait_for
    me = threading.current_thread()
    calls = 0

    def interrupted_once(
        condition: threading.Condition, predicate: Callable[[], bool], timeout: float | None = None
    ) -> bool:
        nonlocal calls
        if threading.current_thread() is me:
            calls += 1
            if calls == 1:
                raise Interrupted
        return original(condition, predicate, timeout)

    monkeypatch.setattr(threading.Condition, "wait_for", interrupted_once)
    with pytest.raises(Interrupted), lock.hold("w"):
        pass
    monkeypatch.undo()
    assert calls == 1 and lock.waiting_writers == 0
    second = Holder("reader 2", lambda: lock.hold("r"), order).start()
    assert second.entered.wait(5)  # no writer is ahead of it any more
    writer = Holder("writer", lambda: lock.hold("w"), order).start()
    reader.finish()
    second.finish()
    assert writer.entered.wait(5)
    writer.finish()


def test_many_threads_never_share_a_write(lock: FairLock) -> None:
    inside = {"r": 0, "w": 0}
    seen_bad: list[str] = []
    guard = threading.Lock()

    def worker(n: int) -> None:
        for i in range(200):
            mode = "w" if (n + i) % 3 == 0 else "r"
            with lock.hold(mode):
                with guard:
                    inside[mode] += 1
                    if inside["w"] > 1 or (inside["w"] and inside["r"]):
                        seen_bad.append(f"{inside}")
                with guard:
                    inside[mode] -= 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not seen_bad
    assert lock.readers == 0 and lock.waiting_writers == 0 and lock.readers_waiting == 0


@pytest.fixture
def storages(tmp_path: Path) -> Iterator[tuple[FairLockStorage, FairLockStorage]]:
    configuration = build_configuration(tmp_path, storage_type=FairLockStorage)
    yield FairLockStorage(configuration), FairLockStorage(configuration)


def test_radicale_storages_of_one_store_share_the_lock(storages: tuple[FairLockStorage, FairLockStorage]) -> None:
    """Two storage objects of one folder (the server's and `LocalStore`'s): a writer waiting
    on one keeps new readers of the other out, which the `flock` alone does not."""
    one, two = storages
    assert one.fair_lock is two.fair_lock is lock_for(one._filesystem_folder)
    order: list[str] = []
    first = Holder("reader 1", lambda: one.acquire_lock("r", "test"), order).start()
    assert first.entered.wait(5)
    writer = Holder("writer", lambda: two.acquire_lock("w", "test"), order).start()
    wait_until(lambda: one.fair_lock.waiting_writers == 1)
    second = Holder("reader 2", lambda: one.acquire_lock("r", "test"), order).start()
    wait_until(lambda: one.fair_lock.readers_waiting == 1)
    first.finish()
    assert writer.entered.wait(5)
    assert two._lock.locked == "w"  # the flock is taken too, as Radicale's cache lock expects
    writer.finish()
    assert second.entered.wait(5)
    second.finish()
    assert order == ["reader 1", "writer", "reader 2"]
