"""A long mirror pass says how far it got, at most every `every_s` seconds per calendar."""

from __future__ import annotations

from calmirror.sync_report import LoggedProgress


def test_a_long_pass_is_said_every_interval_and_a_short_one_not_at_all() -> None:
    said: list[str] = []
    now = [100.0]
    progress = LoggedProgress(said.append, every_s=10.0, clock=lambda: now[0])

    progress("Small", 0, 40)
    now[0] += 2
    progress("Small", 40, 40)  # done within the interval: nothing said
    for done in range(0, 10_016, 500):  # 4 s a batch of 500
        progress("Work", done, 10_016)
        now[0] += 4
    progress("Work", 10_016, 10_016)

    # every third batch: the first one past each 10 s
    assert said == [f"mirroring Work: {done:,} of 10,016 objects" for done in (1500, 3000, 4500, 6000, 7500, 9000)]
    progress("Work", 0, 20)  # the next pass of the same calendar starts a new interval
    assert len(said) == 6
