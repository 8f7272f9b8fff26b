"""The background worker behind the guard's notes and far checks: order kept, batches bounded,
one failure logged without stopping the next, and a stop that finishes what was queued."""

from __future__ import annotations

import logging
import threading

import pytest

from calmirror.worker import Worker

log = logging.getLogger("calmirror.test")


def test_items_are_handled_in_order_in_bounded_batches_and_a_failure_does_not_stop_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered, held = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def handle(items: list[int]) -> None:
        if items == [0]:
            entered.set()
            held.wait(10)
        batches.append(items)
        if 3 in items:
            raise ValueError("this batch fails")

    worker: Worker[int] = Worker("test-worker", handle, log, "%d item(s) failed", batch=3)
    worker.start()
    worker.put(0)  # held, so the rest queue up behind it
    assert entered.wait(10)
    for n in range(1, 8):
        worker.put(n)
    assert not worker.flush(0.05)
    held.set()
    assert worker.flush(10)
    assert batches == [[0], [1, 2, 3], [4, 5, 6], [7]]
    assert "3 item(s) failed" in caplog.text
    assert worker.close(10)


def test_close_finishes_what_is_queued_with_or_without_the_thread() -> None:
    done: list[str] = []
    started: Worker[str] = Worker("test-started", done.extend, log, "%d failed", batch=2)
    started.start()
    started.put("a")
    started.put("b")
    started.put("c")
    assert started.close(10)
    never: Worker[str] = Worker("test-never", done.extend, log, "%d failed")
    never.put("d")
    assert never.close(10)
    assert done == ["a", "b", "c", "d"]
    assert not [t for t in threading.enumerate() if t.name.startswith("test-")]


def test_close_says_when_the_thread_is_still_busy() -> None:
    release = threading.Event()
    worker: Worker[int] = Worker("test-busy", lambda _items: release.wait(10) and None, log, "%d failed")
    worker.start()
    worker.put(1)
    assert not worker.close(0.05)
    release.set()
