"""The persistent busy index at 10,000 mirrored events, side by side with an older revision.

    python bench/bench_busy_index.py                    # this checkout and ae008d4 (before the index)
    python bench/bench_busy_index.py --baseline REV     # another revision to compare with
    python bench/bench_busy_index.py --no-baseline --events 2000

Each side runs the same scenario on the same generated corpus (`common.generate_events`, in
the emulator's Work calendar, mirrored as a conflict calendar), with its own code: the
baseline is checked out with `git worktree add` into a temporary folder and its daemon and
CLI run with `PYTHONPATH` pointing at its `daemon/`. Measured per side:

- the daemon's start with the initial mirror of every event (until it serves);
- availability over 30 days from the daemon (a free-busy REPORT on `busy/` and on the
  mirror, median of 20 windows a day apart, after the daemon settled; and on `busy/` right
  after a local write, median of 10, so none is answered from what an earlier one read);
- a burst of 100 local PUTs into `appointments/` (the guard checks each), median and p95;
- the guard's own check per PUT (`make_guard` called in a process of that side's code on
  the same home, warm, median of 50 candidates), set up as that side's daemon sets it up
  where its code allows (told of local changes; warnings written by `GuardNotes` off the
  request path, and counted in the database once it closes);
- the daemon's peak RSS (`VmHWM`) after the mirror, after idling, after the burst;
- the first local PUT after a daemon restart;
- `calmirror availability` over 30 days in a fresh process with no daemon running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import requests
from bench_push import RunningDaemon

from calmirror import account, config, config_edit
from calmirror.home import Home
from calmirror.state import State

BASELINE = "ae008d4"
IDLE_S = 20.0
CHANGE_SETTLE_S = 1.0  # after a write, before the free-busy REPORT it is meant to precede
WINDOW_START = "2026-12-01"
MIRROR = "icloud-work"  # the Work calendar's mirror
WINDOW_END = "2026-12-31"

GUARD_PROBE = r"""
import json, sys, time
from calmirror import config
from calmirror.availability.guard import make_guard
from calmirror.availability.sources import BusySources
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State
root = sys.argv[1]
home = Home(config_file=__import__("pathlib").Path(root) / "config.toml", data_dir=__import__("pathlib").Path(root))
settings = config.load(home.config_file)
state = State(home.state_db)
engine = Engine(home, settings, state)
try:  # as the daemon has it, where the code has it: told of local changes, warnings off the request path
    from calmirror.availability.guard import GuardNotes
    notes = GuardNotes(state)
    notes.start()
except ImportError:
    notes = None
try:
    busy = BusySources(engine.store, state, settings, notified=True)
except TypeError:
    busy = BusySources(engine.store, state, settings)
guard = make_guard(busy, state, lambda: "warn", *([notes] if notes is not None else []))
times = []
for n in range(51):
    day = 10 + n % 15
    body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:probe-{n}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:202701{day:02d}T0{n % 10}1500Z\r\n"
            f"DTEND:202701{day:02d}T0{n % 10}4500Z\r\nSUMMARY:Probe\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    t0 = time.perf_counter()
    guard("appointments", body)
    times.append(time.perf_counter() - t0)
if notes is not None:
    notes.close()
warned = sum(1 for w in state.guard_warnings() if w["uid"].startswith("probe-"))
print(json.dumps({"first_s": times[0], "warm_s": sorted(times[1:])[len(times[1:]) // 2], "warned": warned}))
"""


def freebusy(daemon: RunningDaemon, session: requests.Session, day: int, collection: str = "busy") -> float:
    first = dt.datetime(2026, 12, 1, tzinfo=dt.UTC) + dt.timedelta(days=day)
    start, end = f"{first:%Y%m%dT%H%M%SZ}", f"{first + dt.timedelta(days=30):%Y%m%dT%H%M%SZ}"
    body = (
        '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f'<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
    )
    t0 = time.perf_counter()
    answer = session.request(
        "REPORT",
        f"{daemon.url}{daemon.auth[0]}/{collection}/",
        data=body.encode(),
        auth=daemon.auth,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        timeout=300,
    )
    took = time.perf_counter() - t0
    if answer.status_code != 200 or "VFREEBUSY" not in answer.text:
        raise RuntimeError(f"free-busy answered {answer.status_code}: {answer.text[:200]}")
    return took


def put(daemon: RunningDaemon, session: requests.Session, n: int) -> float:
    return common.timed_put(daemon, session, "bench-index", n, month="202702")


def cli(env: dict[str, str], home: Home, *args: str, timeout: float = 900) -> common.ChildResult:
    cmd = [sys.executable, "-m", "calmirror", "--home", str(home.data_dir), *args]
    return common.run_measured(cmd, timeout=timeout, env=env)


def side(code: Path, events: list[tuple[str, str]], runs: int = 3) -> dict[str, Any]:
    """The whole scenario for one revision's code (`code` is its `daemon/` folder)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    os.environ["PYTHONPATH"] = str(code)  # RunningDaemon starts its child with this process's environment
    out: dict[str, Any] = {}
    with common.icloud_with(events) as icloud:
        home = Home(config_file=icloud.root / "config.toml", data_dir=icloud.root)
        home.ensure()
        home.config_file.write_text("[server]\nport = 0\n", encoding="utf-8")
        state = State(home.state_db)
        try:
            account.connect(
                home, config.load(home.config_file), state, common.APPLE_ID, common.APP_PASSWORD, icloud.emu.url
            )
        finally:
            state.close()
        config_edit.set_conflicts(home.config_file, [icloud.work_id])
        t0 = time.perf_counter()
        daemon = RunningDaemon(home, icloud.root / "daemon.log")
        out["start_with_initial_mirror_s"] = time.perf_counter() - t0
        out["rss_after_mirror_mib"] = common.daemon_hwm_mib(daemon)
        try:
            time.sleep(IDLE_S)
            out["rss_after_idle_mib"] = common.daemon_hwm_mib(daemon)
            with requests.Session() as session:
                fb = [freebusy(daemon, session, d) for d in range(21)][1:]
                out["availability_daemon_median_ms"] = common.median(fb) * 1000
                mirror_fb = [freebusy(daemon, session, d, MIRROR) for d in range(21)][1:]
                out["availability_mirror_median_ms"] = common.median(mirror_fb) * 1000
                changed = []  # each right after a write: nothing answered from memory of an earlier query
                for d in range(10):
                    put(daemon, session, 2000 + d)
                    time.sleep(CHANGE_SETTLE_S)
                    changed.append(freebusy(daemon, session, d))
                out["availability_daemon_after_change_ms"] = common.median(changed) * 1000
                burst = [put(daemon, session, n) for n in range(100)]
                out["burst_put_median_ms"] = common.median(burst) * 1000
                out["burst_put_p95_ms"] = common.percentile(burst, 0.95) * 1000
            time.sleep(3)
            out["rss_after_burst_mib"] = common.daemon_hwm_mib(daemon)
            window = ("availability", "--from", WINDOW_START, "--to", WINDOW_END, "--json")
            asked = [cli(env, home, *window) for _ in range(runs)]
            direct = [cli(env, home, *window, "--no-daemon") for _ in range(runs)]
            out["availability_cli_asking_daemon_s"] = common.median([r.wall_s for r in asked])
            out["availability_cli_direct_beside_daemon_s"] = common.median([r.wall_s for r in direct])
            out["cli_answers_agree"] = asked[0].stdout == direct[0].stdout
        finally:
            daemon.stop()
        out["rss_peak_mib"] = daemon.proc.maxrss_kib / 1024
        t0 = time.perf_counter()
        daemon = RunningDaemon(home, icloud.root / "daemon2.log")
        out["restart_until_serving_s"] = time.perf_counter() - t0
        try:
            with requests.Session() as session:
                out["first_put_after_restart_s"] = put(daemon, session, 1000)
                out["second_put_after_restart_s"] = put(daemon, session, 1001)
        finally:
            daemon.stop()
        out["rss_peak_restarted_mib"] = daemon.proc.maxrss_kib / 1024
        probe = common.run_measured([sys.executable, "-c", GUARD_PROBE, str(home.data_dir)], timeout=900, env=env)
        if probe.returncode != 0:
            raise RuntimeError(f"guard probe failed: {probe.stderr[-2000:]}")
        found = json.loads(probe.stdout.strip().splitlines()[-1])
        out["guard_first_check_s"] = found["first_s"]
        out["guard_check_warm_ms"] = found["warm_s"] * 1000
        out["guard_warnings_saved"] = found.get("warned")
        cold = [
            cli(env, home, "availability", "--from", WINDOW_START, "--to", WINDOW_END, "--json") for _ in range(runs)
        ]
        for run in cold:
            if run.returncode != 0:
                raise RuntimeError(f"availability failed: {run.stderr[-2000:]}")
        out["availability_cold_cli_s"] = cold[0].wall_s
        out["availability_cold_cli_median_s"] = common.median([r.wall_s for r in cold])
        out["availability_cold_cli_rss_mib"] = max(r.maxrss_kib for r in cold) / 1024
        out["availability_intervals"] = len(json.loads(cold[0].stdout)["intervals"])
        version = cli(env, home, "--version", timeout=60)
        out["import_only_s"] = version.wall_s
    return out


def checkout(rev: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(common.REPO), "worktree", "add", "--detach", str(into), rev], check=True, capture_output=True
    )
    return into / "daemon"


ROWS = [
    ("start with the initial mirror (s)", "start_with_initial_mirror_s", 2),
    ("first local PUT after a restart (s)", "first_put_after_restart_s", 3),
    ("second PUT after the restart (s)", "second_put_after_restart_s", 3),
    ("availability 30 d, cold CLI, no daemon (s)", "availability_cold_cli_s", 2),
    ("  same, median of fresh processes (3 here, 1 for the baseline) (s)", "availability_cold_cli_median_s", 2),
    ("  calmirror --version alone (s)", "import_only_s", 2),
    ("availability 30 d, daemon REPORT on busy/ (ms)", "availability_daemon_median_ms", 1),
    ("availability 30 d, daemon REPORT on the mirror (ms)", "availability_mirror_median_ms", 1),
    ("availability 30 d, daemon REPORT on busy/ right after a write (ms)", "availability_daemon_after_change_ms", 1),
    ("availability CLI asking the daemon (s)", "availability_cli_asking_daemon_s", 2),
    ("availability CLI reading directly, daemon running (s)", "availability_cli_direct_beside_daemon_s", 2),
    ("  both answers identical", "cli_answers_agree", 0),
    ("guard check, warm (ms)", "guard_check_warm_ms", 2),
    ("guard check, first in a process (s)", "guard_first_check_s", 3),
    ("  probe candidates warned about, saved (of 51)", "guard_warnings_saved", 0),
    ("burst of 100 PUTs: median (ms)", "burst_put_median_ms", 1),
    ("burst of 100 PUTs: p95 (ms)", "burst_put_p95_ms", 1),
    ("daemon VmHWM after initial mirror (MiB)", "rss_after_mirror_mib", 0),
    ("daemon VmHWM after idle (MiB)", "rss_after_idle_mib", 0),
    ("daemon VmHWM after burst (MiB)", "rss_after_burst_mib", 0),
    ("restarted daemon VmHWM (MiB)", "rss_peak_restarted_mib", 0),
    ("busy intervals in the window (agreement)", "availability_intervals", 0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    events = common.generate_events(args.events)
    print(f"{args.events} events; {common.machine_summary()}; load {os.getloadavg()}", flush=True)
    now = side(common.REPO / "daemon", events)
    now["events"] = args.events
    print(json.dumps(now, indent=1), flush=True)
    base = None
    if not args.no_baseline:
        with tempfile.TemporaryDirectory(prefix="calmirror-baseline-") as tmp:
            into = Path(tmp) / "tree"
            try:
                base = side(checkout(args.baseline, into), events, runs=1)  # its cold runs take a minute each
            finally:
                subprocess.run(
                    ["git", "-C", str(common.REPO), "worktree", "remove", "--force", str(into)],
                    check=False,
                    capture_output=True,
                )
        print(json.dumps(base, indent=1), flush=True)
    print(f"load after: {os.getloadavg()}")
    if args.json:
        print(json.dumps({"now": now, "baseline": base}, indent=1))
    print(common.figures_table(f"figure at {now['events']:,} events", ROWS, now, base, args.baseline))


if __name__ == "__main__":
    main()
