"""calmirror with `tracemalloc` on, for finding what holds memory under a benchmark's load.

    python bench/traced_daemon.py REPORT_FILE --home H run

Starts tracing before calmirror is imported, then runs `python -m calmirror` with the rest of
the arguments. A thread samples the traced total every `SAMPLE_S` seconds; whenever it is the
largest so far (by 5 %), it takes a snapshot and rewrites REPORT_FILE with the top
allocations grouped by traceback and by line, next to the process's `VmRSS`/`VmHWM`: the
report always describes the largest moment seen, whenever the process ends. Bench-only: the
daemon itself has no such switch. Tracing slows every allocation down, so times measured
with it say nothing; only where the memory is. It sees Python's allocations only: when the
RSS grows far beyond the traced total, look at native memory (`memray run --native`, then
the high-water mark's allocations through `memray.FileReader`), which is how issue 15's
900 MB was found.
"""

from __future__ import annotations

import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 16
SAMPLE_S = 1.0
TOP = 25


def _status() -> str:
    with open("/proc/self/status") as fh:
        return " ".join(line.strip() for line in fh if line.startswith(("VmRSS", "VmHWM")))


def _report(path: Path, snapshot: tracemalloc.Snapshot, traced: int, peak: int) -> None:
    snapshot = snapshot.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    overhead = tracemalloc.get_tracemalloc_memory() / 2**20
    lines = [
        f"traced {traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB), tracing's own {overhead:.1f} MiB; {_status()}",
        "",
        "## by line",
    ]
    for stat in snapshot.statistics("lineno")[:TOP]:
        lines.append(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks  {stat.traceback[0]}")
    lines += ["", "## by traceback"]
    for stat in snapshot.statistics("traceback")[:TOP]:
        lines.append(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks")
        lines += [f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _sampler(path: Path) -> None:
    best = 0
    while True:
        time.sleep(SAMPLE_S)
        traced, peak = tracemalloc.get_traced_memory()
        if traced > best * 1.05:
            best = traced
            _report(path, tracemalloc.take_snapshot(), traced, peak)


def main() -> None:
    report = Path(sys.argv[1])
    tracemalloc.start(FRAMES)
    threading.Thread(target=_sampler, args=(report,), daemon=True, name="bench-tracemalloc").start()
    sys.argv = ["calmirror", *sys.argv[2:]]
    runpy.run_module("calmirror", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
