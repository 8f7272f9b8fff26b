"""The range keeper warms each changed mirror once its changes settle, and stops at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from calmirror.local.range_keeper import RangeKeeper
from tests.helpers import wait_for


def test_a_burst_of_changes_is_warmed_once_after_it_settles() -> None:
    warmed: list[tuple[str, float]] = []

    def warm(collection: str, should_stop: Callable[[], bool]) -> int:
        warmed.append((collection, time.monotonic()))
        return 1

    keeper = RangeKeeper(warm, settle_s=0.5)
    thread = threading.Thread(target=keeper.run, daemon=True)
    thread.start()
    try:
        for _ in range(10):  # a mirror pass writing batch after batch
            keeper.mark_changed("icloud-work")
            keeper.mark_changed("icloud-home")
        last_change = time.monotonic()
        assert wait_for(lambda: len(warmed) >= 2, timeout=10)
        time.sleep(0.6)
        assert sorted(name for name, _ in warmed) == ["icloud-home", "icloud-work"]  # once each
        assert all(at - last_change >= 0.45 for _, at in warmed), (last_change, warmed)  # after it settled
    finally:
        keeper.stop()
        thread.join(2)
    assert not thread.is_alive()


def test_a_failing_warm_does_not_stop_the_keeper() -> None:
    calls: list[str] = []

    def warm(collection: str, should_stop: Callable[[], bool]) -> int:
        calls.append(collection)
        raise OSError("disk gone")

    keeper = RangeKeeper(warm, settle_s=0.05)
    thread = threading.Thread(target=keeper.run, daemon=True)
    thread.start()
    try:
        keeper.mark_changed("icloud-work")
        assert wait_for(lambda: len(calls) == 1, timeout=5)
        keeper.mark_changed("icloud-work")
        assert wait_for(lambda: len(calls) == 2, timeout=5)
    finally:
        keeper.stop()
        thread.join(2)
