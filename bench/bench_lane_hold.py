"""How long a PUT holds its collection's lane while other request threads compute, by the
interpreter's switch interval: the daemon's (`calmirror.interpreter`) against Python's 5 ms.

    python bench/bench_lane_hold.py [--puts 120] [--busy-threads 3] [--rounds 3]

A real `LocalServer` on 127.0.0.1:0 over a fresh store takes sequential PUTs into
`appointments/` from one client, while `--busy-threads` threads of the same process run
pure Python (as request threads rendering a calendar-query or walking a series do). Rounds
alternate the two intervals in one process, so both meet the same box. Printed per interval:
the lane's hold per PUT (inside `hold_lane`, median and p90 over all rounds, the first 20
PUTs of a round left out) and the PUT's latency at the client, which shares the process.

A PUT makes some forty system calls inside the lane; each gives the interpreter lock up, and
taking it back waits until the thread holding it reaches the switch interval.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import common
import requests

from calmirror import interpreter
from calmirror.local import LocalServer, LocalStore, storage
from calmirror.testing import LOCAL_PASSWORD, LOCAL_USER
from calmirror.testing.ical import event

PYTHON_DEFAULT_S = 0.005
WARM_PUTS = 20


class Holds:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.real = storage.hold_lane

    @contextmanager
    def timed(self, store_dir: str | Path, collection: str, mode: str) -> Iterator[None]:
        with self.real(store_dir, collection, mode):
            began = time.perf_counter()
            try:
                yield
            finally:
                self.values.append(time.perf_counter() - began)


def spin(stop: threading.Event) -> None:
    total = 0
    while not stop.is_set():
        for i in range(1000):
            total += i


def one_round(puts: int, holds: Holds, busy: int, switch: float) -> tuple[list[float], list[float]]:
    sys.setswitchinterval(switch)
    holds.values = []
    latencies: list[float] = []
    stop = threading.Event()
    spinners = [threading.Thread(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
    with tempfile.TemporaryDirectory(prefix="calmirror-bench-") as tmp:
        store = LocalStore(Path(tmp) / "store", LOCAL_USER)
        store.ensure_base()
        with LocalServer(store.store_dir, port=0, username=LOCAL_USER, password=LOCAL_PASSWORD) as server:
            for thread in spinners:
                thread.start()
            session = requests.Session()
            try:
                for n in range(puts):
                    began = time.perf_counter()
                    answer = session.put(
                        f"{server.url}{LOCAL_USER}/appointments/e{n}.ics",
                        data=event(f"e{n}", start="20261202T100000Z", end="20261202T110000Z"),
                        headers={"Content-Type": "text/calendar"},
                        auth=(LOCAL_USER, LOCAL_PASSWORD),
                        timeout=60,
                    )
                    latencies.append(time.perf_counter() - began)
                    if answer.status_code != 201:
                        raise RuntimeError(f"PUT answered {answer.status_code}")
            finally:
                stop.set()
                for thread in spinners:
                    thread.join()
    return holds.values[WARM_PUTS:], latencies[WARM_PUTS:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=120)
    parser.add_argument("--busy-threads", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("radicale").setLevel(logging.ERROR)  # "Storage location ... creating now", each round
    holds = Holds()
    storage.hold_lane = holds.timed  # type: ignore[assignment]
    intervals = {"calmirror": interpreter.SWITCH_INTERVAL_S, "Python's default": PYTHON_DEFAULT_S}
    found: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in intervals}
    for n in range(args.rounds):
        for name, switch in intervals.items():
            print(f"[lane] round {n + 1}: {name} ({switch * 1000:g} ms)", flush=True)
            hold, latency = one_round(args.puts, holds, args.busy_threads, switch)
            found[name][0].extend(hold)
            found[name][1].extend(latency)
    print()
    print(f"machine: {common.machine_summary()}; revision {common.revision()}")
    print(f"{args.rounds} rounds × {args.puts} PUTs, {args.busy_threads} busy threads in the server's process")
    print("| switch interval | lane hold p50 ms | p90 ms | PUT p50 ms | p90 ms |")
    print("|---|---|---|---|---|")
    for name, switch in intervals.items():
        hold, latency = found[name]
        print(
            f"| {name} ({switch * 1000:g} ms) | {statistics.median(hold) * 1000:.1f} | "
            f"{common.percentile(hold, 0.9) * 1000:.1f} | {statistics.median(latency) * 1000:.1f} | "
            f"{common.percentile(latency, 0.9) * 1000:.1f} |"
        )
    ours, peer = (statistics.median(found[name][0]) for name in intervals)
    print(f"- lane hold, median: {ours / peer:.2f}× Python's default")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
