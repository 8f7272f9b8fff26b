"""How often the daemon's interpreter hands its lock from one thread to another.

The daemon answers every client from one process. A client's PUT holds its collection's lane
(`local.store_lock`) through some forty system calls; each one gives the interpreter lock up,
and taking it back waits until the thread holding it reaches the switch interval whenever
another request thread is computing (rendering a calendar-query, walking a series). At
Python's 5 ms, with three such threads, a PUT held the lane 41–64 ms (median) where it
needs about 7, and every other PUT of the collection queued behind it: under 20 clients the
lane was held 84 % of the minute. At 1 ms the hold was 15–25 ms in the same runs
(`bench/bench_lane_hold.py`). Computing threads then take turns five times as often; what
that costs shows in `bench_load.py`'s answers per second.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.001


def hand_over_often() -> None:
    """For the daemon's process (not the CLI's, which serves no one meanwhile)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
