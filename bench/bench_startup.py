"""Start-up of a fresh `calmirror` process: `--help`, `status`, an idle and a one-change `sync`.

    python bench/bench_startup.py [--runs 5] [--events 500] [--base-pythonpath OLD/daemon] [--no-compile]

A small home is enough: at 100,000 events the one-change pass itself is a few tenths of a
second and the rest of the whole process is its start (imports, settings, the state's open).
Each command runs as a child process exactly as a user's shell runs it (`python -m calmirror`),
against the bundled emulator in this process, `--runs` times; the medians of wall time and CPU
(user + system, from `wait4`) are printed, and the requests iCloud saw for each sync.

With `--base-pythonpath` (the `daemon/` folder of another revision) a second home connected to
the same emulator runs the same commands with that code, each right before this checkout's, and
the ratios come out beside them (this / base). Both code folders are byte-compiled first, as an
installed package is (`--no-compile` leaves them as they are: on a box with
PYTHONDONTWRITEBYTECODE and no `__pycache__`, every start compiles calmirror's sources again).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import common

from calmirror.emulator import Emulator
from calmirror.testing import APP_PASSWORD, APPLE_ID
from calmirror.testing.homes import connected_home

THIS_CODE = common.REPO / "daemon"
STEPS = ("sync (one change)", "sync (idle)", "status", "--help")  # in this order: the change first


@dataclass
class Side:
    """One revision's code and the home it runs in."""

    code: Path
    home: Path
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, list[int]] = field(default_factory=dict)

    def run(self, step: str, emu: Emulator) -> None:
        args = ["sync"] if step.startswith("sync") else [step]
        env = {**os.environ, "CALMIRROR_HOME": str(self.home), "PYTHONPATH": str(self.code)}
        emu.clear_requests()
        result = common.run_measured([sys.executable, "-m", "calmirror", *args], timeout=300, env=env)
        if not result.ok:
            raise RuntimeError(f"calmirror {step} failed ({result.returncode}): {result.stderr[-2000:]}")
        if step == "sync (one change)" and "1 updated" not in result.stdout and "1 added" not in result.stdout:
            raise RuntimeError(f"the one-change sync did not see its change: {result.stdout}")
        self.wall.setdefault(step, []).append(result.wall_s)
        self.cpu.setdefault(step, []).append(result.cpu_s)
        self.requests.setdefault(step, []).append(len(emu.requests))


def _change(emu: Emulator, work: str, n: int) -> None:
    """One event changed in iCloud, as a phone would: the same resource, a new summary."""
    emu.put_item(
        work,
        "bench-startup-change.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\nUID:bench-startup-change\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n"
        f"SUMMARY:Change {n}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )


def _table(sides: list[Side], labels: list[str]) -> str:
    head = ["step", *(f"{label} wall / CPU (s)" for label in labels), "requests"]
    if len(sides) == 2:
        head.append("ratio this/base: wall / CPU")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in STEPS:
        cells = [step]
        for side in sides:
            cells.append(f"{common.median(side.wall[step]):.3f} / {common.median(side.cpu[step]):.3f}")
        cells.append(" / ".join(str(max(side.requests[step])) for side in sides))
        if len(sides) == 2:
            base, this = sides
            wall = common.median(this.wall[step]) / common.median(base.wall[step])
            cpu = common.median(this.cpu[step]) / common.median(base.cpu[step])
            cells.append(f"{wall:.2f} / {cpu:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=500, help="generated events in Work")
    parser.add_argument("--base-pythonpath", metavar="DIR", help="the daemon/ folder of a revision to compare with")
    parser.add_argument("--no-compile", action="store_true", help="leave both code folders' bytecode as it is")
    args = parser.parse_args()
    codes = [Path(args.base_pythonpath).resolve()] if args.base_pythonpath else []
    codes.append(THIS_CODE)
    labels = ["base", "this"] if args.base_pythonpath else ["this"]
    if not args.no_compile:
        for code in codes:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "calmirror")], check=True)
    print(f"{common.machine_summary()}; {common.revision()}; load before {os.getloadavg()}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="calmirror-bench-startup-") as tmp,
        Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu,
    ):
        work = emu.calendar_id("Work")
        emu.bulk_load(work, common.generate_events(args.events))
        sides = []
        for i, code in enumerate(codes):
            home = Path(tmp) / f"home{i}"
            home.mkdir(mode=0o700)
            connected_home(home, emu, conflicts=("Work", "Home"))
            side = Side(code, home)
            side.run("sync (idle)", emu)  # the initial mirror, not counted
            side.wall.clear()
            side.cpu.clear()
            side.requests.clear()
            sides.append(side)
        for n in range(args.runs):
            _change(emu, work, n)
            for step in STEPS:
                for side in sides:
                    side.run(step, emu)
        print(f"load after {os.getloadavg()}; medians of {args.runs} runs, {args.events:,} events in Work")
        print(_table(sides, labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
