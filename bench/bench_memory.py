"""The daemon's peak RSS under load, one kind of request at a time (issue 15's memory goal).

    python bench/bench_memory.py [--events 10000] [--clients 20] [--seconds 30]
        [--kinds put,get,query,freebusy,mixed] [--trace DIR] [--base-pythonpath DIR]

The home is mirrored once (as in `bench_load.py`); then, for each kind, a fresh copy of it
gets a fresh daemon and `--clients` clients sending only that kind of request (`mixed`: the
load benchmark's mix) for `--seconds`. The daemon's `VmHWM` is read just before it stops.
With `--base-pythonpath` each kind runs on a daemon of that code first, so a change is
measured against the code before it in the same run. With `--trace DIR` the daemon runs
under `traced_daemon.py` and DIR gets one report per kind of what the traced Python heap
held at its largest (times are then meaningless, and the RSS is tracing's too).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import common
from bench_load import KINDS, LoadResult, load_daemon, mirrored_home

TRACER = Path(__file__).resolve().parent / "traced_daemon.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kinds", default="put,get,query,freebusy,mixed")
    parser.add_argument("--trace", type=Path, help="a folder for tracemalloc reports, one per kind")
    parser.add_argument("--base-pythonpath", help="the daemon/ folder of another revision, measured first")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        if kind not in (*KINDS, "mixed"):
            parser.error(f"unknown kind {kind!r}")
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, LoadResult]] = []
    with mirrored_home(args.events, "memory") as (sc, pristine):
        sides = [("base", args.base_pythonpath)] if args.base_pythonpath else []
        sides.append(("this", None))
        for kind in kinds:
            for side, pythonpath in sides:
                home = sc.root / f"home-{side}-{kind}"
                shutil.copytree(pristine, home, symlinks=True)
                launcher: tuple[str, ...] = ("-m", "calmirror")
                if args.trace:
                    launcher = (str(TRACER), str(args.trace / f"{side}-{kind}.txt"))
                only = None if kind == "mixed" else kind
                result = load_daemon(
                    f"{side} {kind}", home, args.clients, args.seconds, pythonpath, only=only, launcher=launcher
                )
                rows.append((kind, result))
                print(f"[memory] {side} {kind}: VmHWM {result.maxrss_mib:.0f} MiB, load {result.load_avg}", flush=True)
                shutil.rmtree(home, ignore_errors=True)
    print()
    print(f"machine: {common.machine_summary()}; revision {common.revision()}")
    print(f"{args.clients} clients × {args.seconds:.0f} s per kind at {args.events:,} mirrored events")
    print("| daemon | kind | answered | per s | failed | VmHWM MiB | load after |")
    print("|---|---|---:|---:|---:|---:|---|")
    for kind, result in rows:
        failed = sum(result.tally.failures.values())
        print(
            f"| {result.target} | {kind} | {result.answered()} | {result.answered() / result.seconds:.1f} | "
            f"{failed} | {result.maxrss_mib:.0f} | {result.load_avg} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
