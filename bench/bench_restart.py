"""The daemon over a large mirror: the first local PUT after a (re)start, and its peak RSS.

    python bench/bench_restart.py --events 100000 [--idle-s 25] [--burst 50] [--json]

Issue 15's goal at 100,000 mirrored events: the first PUT into `appointments/` after a daemon
restart under 0.3 s, the daemon under 200 MB. The corpus (`common.generate_events`) sits in the
emulator's Work calendar; a connected home mirrors it as a conflict calendar in one child pass
(`bench_mirror.py --child-mirror`, set-up, reported but not the point). Then, measured:

1. `calmirror run` starts on the mirrored home (its first pass is an idle re-sync): the time
   until it serves, the first and second local PUT;
2. it idles until it has made at least one more pass (`[sync] interval` is set short), then
   takes a burst of `--burst` PUTs one after the other: VmHWM after each stage;
3. it is stopped and started again: the time until it serves and the first PUT after this
   restart, its VmHWM after an idle pass.

The emulator runs in this process, calmirror in its children (see `common`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import common
import requests
from bench_push import RunningDaemon

from calmirror.emulator import Emulator
from calmirror.testing.homes import connected_home

INTERVAL_S = 10  # the daemon's mirror interval here; the config allows 5 at least
BENCH_MIRROR = Path(__file__).resolve().parent / "bench_mirror.py"


def put(daemon: RunningDaemon, session: requests.Session, n: int) -> float:
    return common.timed_put(daemon, session, "bench-restart", n, month="203003")


def wait_for_a_pass(emu: Emulator, since: int, timeout: float) -> float:
    """Seconds until the daemon asked iCloud for changes again (a sync REPORT after `since`
    requests in the log): an idle pass has started; a second of slack lets it finish."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if any(r.method == "REPORT" for r in emu.requests[since:]):
            time.sleep(1.0)
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the daemon made no pass in {timeout:.0f} s")


def run(events: list[tuple[str, str]], *, idle_s: float, burst: int) -> dict[str, Any]:
    out: dict[str, Any] = {"events": len(events), "load_before": os.getloadavg()}
    with common.icloud_with(events) as icloud:
        out["emulator_load_s"] = icloud.load_s
        home = connected_home(
            icloud.root / "home", icloud.emu, conflicts=("Work",), extra_config=f"[sync]\ninterval = {INTERVAL_S}\n"
        )
        mirrored = common.run_measured(
            [sys.executable, str(BENCH_MIRROR), "--child-mirror", str(home.data_dir)], timeout=3600
        )
        if not mirrored.ok:
            raise RuntimeError(f"initial mirror failed: {mirrored.stderr[-2000:]}")
        passed = json.loads(mirrored.stdout.strip().splitlines()[-1])
        if passed["added"] != len(events) or passed["errors"]:
            raise RuntimeError(f"initial mirror added {passed['added']} of {len(events)}: {passed['errors']}")
        out["initial_mirror_pass_s"] = passed["pass_s"]
        out["initial_mirror_own_s"] = passed["own_s"]
        out["initial_mirror_vmhwm_mib"] = mirrored.maxrss_mib

        started = time.perf_counter()
        daemon = RunningDaemon(home, icloud.root / "daemon.log")
        out["start_until_serving_s"] = time.perf_counter() - started
        try:
            with requests.Session() as session:
                out["first_put_s"] = put(daemon, session, 0)
                out["second_put_s"] = put(daemon, session, 1)
                out["vmhwm_after_start_mib"] = common.daemon_hwm_mib(daemon)
                seen = len(icloud.emu.requests)
                time.sleep(idle_s)
                out["idle_pass_seen_after_s"] = idle_s + wait_for_a_pass(icloud.emu, seen, INTERVAL_S * 6)
                out["vmhwm_after_idle_mib"] = common.daemon_hwm_mib(daemon)
                times = [put(daemon, session, 2 + n) for n in range(burst)]
                out["burst"] = burst
                out["burst_put_median_ms"] = common.median(times) * 1000
                out["burst_put_max_ms"] = max(times) * 1000
            time.sleep(2)
            out["vmhwm_after_burst_mib"] = common.daemon_hwm_mib(daemon)
        finally:
            daemon.stop()
        out["daemon_peak_mib"] = daemon.proc.maxrss_kib / 1024

        started = time.perf_counter()
        daemon = RunningDaemon(home, icloud.root / "daemon2.log")
        out["restart_until_serving_s"] = time.perf_counter() - started
        try:
            with requests.Session() as session:
                out["first_put_after_restart_s"] = put(daemon, session, 1000)
                out["second_put_after_restart_s"] = put(daemon, session, 1001)
                seen = len(icloud.emu.requests)
                out["restarted_idle_pass_seen_after_s"] = wait_for_a_pass(icloud.emu, seen, INTERVAL_S * 6)
            out["restarted_vmhwm_after_idle_mib"] = common.daemon_hwm_mib(daemon)
        finally:
            daemon.stop()
        out["restarted_peak_mib"] = daemon.proc.maxrss_kib / 1024
        out["load_after"] = os.getloadavg()
        print(json.dumps(out), file=sys.stderr, flush=True)  # before the clean-up of 100,000s of files
    return out


ROWS = [
    ("initial mirror (set-up, one child pass) (s)", "initial_mirror_pass_s", 1),
    ("  of which calmirror's own (s)", "initial_mirror_own_s", 1),
    ("  peak RSS of that pass (MiB)", "initial_mirror_vmhwm_mib", 0),
    ("daemon start on the mirrored home, until it serves (s)", "start_until_serving_s", 2),
    ("first local PUT after the start (s)", "first_put_s", 3),
    ("second PUT (s)", "second_put_s", 3),
    ("daemon VmHWM after start and two PUTs (MiB)", "vmhwm_after_start_mib", 0),
    ("daemon VmHWM after an idle pass (MiB)", "vmhwm_after_idle_mib", 0),
    ("burst of PUTs: median (ms)", "burst_put_median_ms", 1),
    ("burst of PUTs: slowest (ms)", "burst_put_max_ms", 1),
    ("daemon VmHWM after the burst (MiB)", "vmhwm_after_burst_mib", 0),
    ("daemon restart, until it serves (s)", "restart_until_serving_s", 2),
    ("first local PUT after the restart (s)", "first_put_after_restart_s", 3),
    ("second PUT after the restart (s)", "second_put_after_restart_s", 3),
    ("restarted daemon VmHWM after an idle pass (MiB)", "restarted_vmhwm_after_idle_mib", 0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--idle-s", type=float, default=25.0, help="seconds to idle before waiting for a pass")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    events = common.generate_events(args.events)
    print(f"{args.events:,} events; {common.machine_summary()}; {common.revision()}", flush=True)
    out = run(events, idle_s=args.idle_s, burst=args.burst)
    print(
        json.dumps(out)
        if args.json
        else common.figures_table(f"figure at {out['events']:,} mirrored events", ROWS, out)
    )
    print(f"load average before {out['load_before']}, after {out['load_after']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
