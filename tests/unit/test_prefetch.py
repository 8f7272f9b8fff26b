"""The next piece is fetched while the caller works on this one: in order, one at a time."""

from __future__ import annotations

import threading
import time

import pytest

from calmirror.prefetch import prefetched


class Recorder:
    """A fetch that notes when each call runs and whether two ever overlap."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.overlapped = False
        self.started: list[int] = []
        self.finished: list[int] = []
        self.fail_on = fail_on

    def __call__(self, piece: int) -> int:
        with self.lock:
            self.running += 1
            self.overlapped |= self.running > 1
            self.started.append(piece)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
            self.finished.append(piece)
        if piece == self.fail_on:
            raise ValueError(f"piece {piece}")
        return piece * 10


def test_answers_come_in_order_and_the_next_is_asked_for_meanwhile() -> None:
    fetch = Recorder()
    seen = []
    for answer in prefetched(fetch, [1, 2, 3, 4]):
        time.sleep(0.05)  # the caller's work on this answer
        seen.append((answer, list(fetch.started)))
    assert [answer for answer, _ in seen] == [10, 20, 30, 40]
    assert seen[0][1] == [1, 2]  # piece 2 was asked for while the caller had piece 1
    assert fetch.started == fetch.finished == [1, 2, 3, 4]
    assert not fetch.overlapped


@pytest.mark.parametrize("pieces", [[], [7]])
def test_one_piece_or_none_needs_no_thread(pieces: list[int]) -> None:
    before = threading.active_count()
    assert list(prefetched(Recorder(), pieces)) == [piece * 10 for piece in pieces]
    assert threading.active_count() == before


def test_an_error_comes_out_when_its_answer_is_due() -> None:
    answers = prefetched(Recorder(fail_on=3), [1, 2, 3, 4])
    assert next(answers) == 10
    assert next(answers) == 20
    with pytest.raises(ValueError, match="piece 3"):
        next(answers)


def test_closing_waits_for_the_fetch_in_flight() -> None:
    fetch = Recorder()
    answers = prefetched(fetch, [1, 2, 3])
    assert next(answers) == 10
    answers.close()
    assert fetch.finished == fetch.started == [1, 2]
