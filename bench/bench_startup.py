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

`--keep DIR` keeps the emulator's store and the homes in DIR, and later runs start from them:
at `--events 100000` building them takes many minutes (loading the emulator, or copying its
store from `CALMIRROR_BENCH_EMULATOR_CACHE`, then one initial mirror; the base's home is a
copy of it). The emulator then listens on the ports written in DIR, so the homes' settings stay
true from run to run. The homes must have been mirrored by code whose state both sides read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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

    def run(self, step: str, emu: Emulator, timeout: float = 300) -> None:
        args = ["sync"] if step.startswith("sync") else [step]
        env = {**os.environ, "CALMIRROR_HOME": str(self.home), "PYTHONPATH": str(self.code)}
        emu.clear_requests()
        result = common.run_measured([sys.executable, "-m", "calmirror", *args], timeout=timeout, env=env)
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
        f"SUMMARY:Change {n} {time.time_ns()}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )


@contextlib.contextmanager
def _kept_emulator(keep: Path, events: int) -> Iterator[Emulator]:
    """The emulator of `keep`, on its ports, built from the corpus the first time."""
    store = keep / "emulator-store"
    ports_file = keep / "ports.json"
    fresh = not ports_file.exists()
    if fresh:
        keep.mkdir(parents=True, exist_ok=True)
        ports_file.write_text(json.dumps({"front": common.free_port(), "partition": common.free_port()}))
        corpus = common.generate_events(events)
        cache = os.environ.get(common.EMULATOR_CACHE_ENV)
        kept = Path(cache) / common.corpus_key(corpus) if cache else None
        if kept is not None and kept.is_dir():
            shutil.copytree(kept, store, symlinks=True)
            corpus = []
    ports = json.loads(ports_file.read_text())
    with Emulator(
        apple_id=APPLE_ID,
        password=APP_PASSWORD,
        seed="empty",
        data_dir=str(store),
        port=ports["front"],
        partition_port=ports["partition"],
    ) as emu:
        if fresh and corpus:
            emu.bulk_load(emu.calendar_id("Work"), corpus)
        yield emu


def _homes(emu: Emulator, parent: Path, codes: list[Path], keep: bool) -> list[Side]:
    """One connected home per side, mirrored once (not counted). Kept homes are made once: this
    checkout's is mirrored and the others are copies of it."""
    sides = [Side(code, parent / f"home{i}") for i, code in enumerate(codes)]
    this = sides[-1]
    for side in sides:
        if side.home.is_dir():
            continue
        if keep and side is not this:
            if not this.home.is_dir():
                this.home.mkdir(mode=0o700, parents=True)
                connected_home(this.home, emu, conflicts=("Work", "Home"))
            this.run("sync (idle)", emu, timeout=7200)
            shutil.copytree(this.home, side.home, symlinks=True)
        else:
            side.home.mkdir(mode=0o700, parents=True)
            connected_home(side.home, emu, conflicts=("Work", "Home"))
    for side in sides:
        side.run("sync (idle)", emu, timeout=7200)  # the initial mirror (or a kept home's catching up), not counted
        side.wall.clear()
        side.cpu.clear()
        side.requests.clear()
    return sides


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
    parser.add_argument("--keep", metavar="DIR", help="keep the emulator's store and the homes here, reuse them")
    args = parser.parse_args()
    codes = [Path(args.base_pythonpath).resolve()] if args.base_pythonpath else []
    codes.append(THIS_CODE)
    labels = ["base", "this"] if args.base_pythonpath else ["this"]
    if not args.no_compile:
        for code in codes:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "calmirror")], check=True)
    print(f"{common.machine_summary()}; {common.revision()}; load before {os.getloadavg()}", flush=True)
    with contextlib.ExitStack() as stack:
        if args.keep:
            parent = Path(args.keep).resolve()
            emu = stack.enter_context(_kept_emulator(parent, args.events))
        else:
            parent = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="calmirror-bench-startup-")))
            emu = stack.enter_context(Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample"))
            emu.bulk_load(emu.calendar_id("Work"), common.generate_events(args.events))
        work = emu.calendar_id("Work")
        sides = _homes(emu, parent, codes, bool(args.keep))
        print(f"homes ready, load {os.getloadavg()}", flush=True)
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
