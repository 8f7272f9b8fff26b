"""Benchmarks 1 and 2: initial mirror, idle re-sync and one-change re-sync, calmirror vs vdirsyncer.

    python bench/bench_mirror.py [--events N] [--vdirsyncer-timeout-min M]   # alone
    python bench/bench_mirror.py --events 100000 --no-vdirsyncer --base-pythonpath OLD/daemon
    python bench/bench_mirror.py --events 10000 --no-vdirsyncer --busy-index   # as the daemon's first pass
    python bench/run_all.py [--large]                                         # with the rest

Both sides read the same emulator calendar (the generated corpus, loaded once) and are run
as child processes, so each one's wall time and peak RSS are its own and the emulator (in
this process) never competes with them for the GIL:

- calmirror: `python bench/bench_mirror.py --child-mirror HOME` runs exactly one
  `Engine.mirror_pass` (what the daemon does every interval) and prints its pass time.
- vdirsyncer (PyPI, not a calmirror dependency): `vdirsyncer sync` of the same calendar,
  discovered through the emulator's front host like a user would configure it, into a plain
  Radicale (`python -m radicale`, default settings, `auth type = none`) in another child.

Requests and bytes on the iCloud side come from the emulator's request log; on vdirsyncer's
local side from the plain Radicale's per-response log lines.

With `--base-pythonpath` (the `daemon/` folder of another revision, e.g. a `git worktree` of
it), a second home connected to the same emulator runs the same three passes with that code,
each right before this checkout's, and the base's figures come out as a second table with
ratios (this code / base). The emulator is always this checkout's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import common
from common import ChildResult, Report, Row, fmt
from mirror_passes import base_table, base_then_new, child_mirror
from mirror_scenario import CHILD_TIMEOUT_S, VDIRSYNCER_PEER, Scenario, Traffic
from mirror_vdirsyncer import limits_probe, peer_resync, setup_vdirsyncer

from calmirror.testing.homes import connected_home

# --- the benchmark --------------------------------------------------------------------------


def setup_calmirror(sc: Scenario) -> None:
    """A calmirror home connected to the emulator, Work linked and mirrored (setup, not measured);
    another for the base revision when compared with one."""
    sc.home = connected_home(sc.root / "calmirror-home", sc.emu, conflicts=("Work",))
    if sc.base_code is not None:
        sc.base_home = connected_home(sc.root / "base-home", sc.emu, conflicts=("Work",))


def _mirror_rows(
    sc: Scenario,
    step: str,
    mine: ChildResult,
    data: dict[str, object],
    my_traffic: Traffic,
    peer: ChildResult | None,
    peer_traffic: Traffic | None,
    peer_failed: str | None,
    goals: dict[str, str],
) -> None:
    """Rows for one step (initial / idle / one change): wall, requests, bytes, peak RSS."""
    bench = f"{step} ({sc.label})"
    peer_ok = peer is not None and peer.ok and peer_failed is None
    failed_text = peer_failed or (
        None
        if peer is None or peer.ok
        else f"did not finish in {peer.wall_s / 60:.0f} min"
        if peer.timed_out
        else f"failed (exit {peer.returncode})"
    )
    note = (
        f"calmirror pass alone {fmt(float(data['pass_s']), 's')} (process start, imports, discovery excluded), "  # type: ignore[arg-type]
        f"iCloud's answers took {fmt(float(data['remote_s']), 's')} of it (the next one is fetched while "  # type: ignore[arg-type]
        "the last is worked on)"
    )

    def row(metric: str, calmirror: float, vdirsyncer: float | None, unit: str, **more: str) -> None:
        """One row beside vdirsyncer's figure, or what became of vdirsyncer's run."""
        shown = vdirsyncer if peer_ok else None
        sc.report.add(
            Row(
                bench,
                metric,
                calmirror,
                VDIRSYNCER_PEER,
                shown,
                unit,
                peer_text=None if peer_ok else failed_text,
                **more,
            )
        )

    row(
        "wall time, whole process",
        mine.wall_s,
        peer.wall_s if peer else None,
        "s",
        goal=goals.get("wall", ""),
        note=note,
    )
    row(
        "requests to iCloud",
        my_traffic.requests,
        peer_traffic.requests if peer_traffic else None,
        "",
        goal=goals.get("requests", ""),
        note=f"calmirror {my_traffic.methods_text()}; vdirsyncer "
        f"{peer_traffic.methods_text() if peer_traffic else '–'}",
    )
    row(
        "bytes from iCloud",
        my_traffic.response_bytes / 1024,
        peer_traffic.response_bytes / 1024 if peer_traffic else None,
        "KiB",
        goal=goals.get("bytes", ""),
        note=f"sent: calmirror {my_traffic.request_bytes / 1024:.1f} KiB, vdirsyncer "
        f"{(peer_traffic.request_bytes / 1024) if peer_traffic else 0:.1f} KiB",
    )
    row(
        "peak RSS of the syncing process",
        mine.maxrss_mib,
        peer.maxrss_mib if peer else None,
        "MiB",
        note="calmirror writes its store in-process; vdirsyncer's target Radicale is a separate process",
    )


def run(
    sc: Scenario, *, vdir_timeout_s: float, with_vdirsyncer: bool = True, child_timeout_s: float = CHILD_TIMEOUT_S
) -> None:
    """Initial mirror, idle re-sync, one-change re-sync; rows go to `sc.report`."""
    print(f"\n[mirror] {sc.label}: calmirror initial mirror", flush=True)
    setup_calmirror(sc)
    peer_skip = setup_vdirsyncer(sc) if with_vdirsyncer else "skipped (--no-vdirsyncer)"
    if peer_skip:
        sc.report.finding(f"vdirsyncer: {peer_skip}")

    large = sc.size >= 10_000
    mine, data, my_traffic = base_then_new(sc, "initial mirror", child_timeout_s)
    if data["errors"] or data["added"] != sc.size:
        sc.report.finding(f"calmirror initial mirror: added {data['added']} of {sc.size}, errors {data['errors']}")

    peer: ChildResult | None = None
    peer_traffic: Traffic | None = None
    if sc.vdir is not None and not peer_skip:
        print(f"[mirror] {sc.label}: vdirsyncer initial sync (timeout {vdir_timeout_s / 60:.0f} min)", flush=True)
        sc.emu.clear_requests()
        sc.vdir.radicale.mark()
        peer = sc.vdir.sync(vdir_timeout_s)
        peer_traffic = Traffic.of(sc.emu)
        local = sc.vdir.radicale.traffic()
        sc.vdir_synced = peer.ok and sc.vdir.local_count() == sc.size
        sc.report.finding(
            f"vdirsyncer initial sync: exit {peer.returncode}, {sc.vdir.local_count()} of {sc.size} "
            f"items in its Radicale, local side {local.requests} requests "
            f"({' '.join(f'{k}×{v}' for k, v in sorted(local.by_method.items()))})"
            + (f"; stderr tail: {peer.stderr[-300:]!r}" if not peer.ok else "")
        )
    _mirror_rows(
        sc,
        "initial mirror",
        mine,
        data,
        my_traffic,
        peer,
        peer_traffic,
        peer_skip,
        {"wall": "< 15 s at 10,000" if large else "", "requests": ""},
    )

    # --- idle re-sync ---
    print(f"[mirror] {sc.label}: idle re-sync", flush=True)
    mine, data, my_traffic = base_then_new(sc, "idle re-sync", child_timeout_s)
    peer, peer_traffic, why = peer_resync(sc, vdir_timeout_s, peer_skip)
    _mirror_rows(
        sc, "idle re-sync", mine, data, my_traffic, peer, peer_traffic, why, {"requests": "1", "bytes": "< 1 KiB"}
    )
    ok_requests = my_traffic.requests == 1 and my_traffic.response_bytes < 1024
    sc.report.finding(
        f"idle re-sync goal (1 request under 1 KB): {'met' if ok_requests else 'NOT met'} "
        f"({my_traffic.requests} request(s), {my_traffic.response_bytes} bytes answered)"
    )

    # --- one change in iCloud ---
    print(f"[mirror] {sc.label}: one-change re-sync", flush=True)
    name, text = sc.events[len(sc.events) // 2]
    sc.emu.put_item(sc.work_id, name, text.replace("SUMMARY:", "SUMMARY:Changed: ", 1))
    mine, data, my_traffic = base_then_new(sc, "one-change re-sync", child_timeout_s)
    if data["updated"] != 1:
        sc.report.finding(f"calmirror one-change re-sync updated {data['updated']} items (expected 1)")
    peer, peer_traffic, why = peer_resync(sc, vdir_timeout_s, peer_skip)
    _mirror_rows(sc, "one-change re-sync", mine, data, my_traffic, peer, peer_traffic, why, {})

    limits_probe(sc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-mirror", metavar="HOME", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--vdirsyncer-timeout-min", type=float, default=45.0)
    parser.add_argument("--no-vdirsyncer", action="store_true")
    parser.add_argument(
        "--base-pythonpath", metavar="DIR", help="the daemon/ folder of a revision to run beside this checkout"
    )
    parser.add_argument("--child-timeout-s", type=float, default=CHILD_TIMEOUT_S, help="limit for each calmirror pass")
    parser.add_argument(
        "--busy-index",
        action="store_true",
        help="build the busy index before each pass, as the daemon does, so the passes write its entries too",
    )
    args = parser.parse_args()
    if args.child_mirror:
        return child_mirror(args.child_mirror, args.busy_index)
    report = Report()
    events = common.generate_events(args.events)
    print(f"{common.machine_summary()}; {common.revision()}; load {os.getloadavg()}", flush=True)
    with common.icloud_with(events) as icloud:
        print(f"[mirror] emulator loaded {args.events:,} events in {icloud.load_s:.0f} s", flush=True)
        sc = Scenario(icloud.emu, icloud.root, events, icloud.work_id, report, f"{args.events:,} events")
        sc.base_code = str(Path(args.base_pythonpath).resolve()) if args.base_pythonpath else None
        sc.busy_index = args.busy_index
        try:
            run(
                sc,
                vdir_timeout_s=args.vdirsyncer_timeout_min * 60,
                with_vdirsyncer=not args.no_vdirsyncer,
                child_timeout_s=args.child_timeout_s,
            )
        finally:
            if sc.vdir:
                sc.vdir.close()
    print()
    print(common.text_table(report.rows))
    if sc.base_rows:
        print()
        print(base_table(sc))
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
