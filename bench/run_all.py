"""Run every calmirror benchmark against its peer on the same data and print one table.

    python bench/run_all.py                 # 1,000 events; a few minutes
    python bench/run_all.py --large         # 10,000 events, vdirsyncer included (can take an hour)
    python bench/run_all.py --markdown out.md   # also write the table and notes as Markdown

One emulator (our iCloud) holds the generated corpus; on it, in order:
1. bench_mirror: initial mirror, idle re-sync, one-change re-sync (calmirror vs vdirsyncer),
   and vdirsyncer against Radicale's default REPORT limits;
2. bench_push: push latency through the real daemon (vs vdirsyncer's best case);
3. bench_serving: calmirror's local server vs a plain Radicale on the same store;
4. bench_availability_peer (own emulator, 20 % recurring corpus): the engine vs Radicale's
   free-busy REPORT.
A benchmark that fails is reported as failed in the table and the others still run.
Every temp folder and server is removed or stopped on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import bench_availability_peer
import bench_mirror
import bench_push
import bench_serving
import common
from common import Report, Row
from mirror_scenario import Scenario


def guarded(report: Report, name: str, step: Callable[[], None]) -> None:
    """Run one benchmark; a failure becomes a table row and a note, never a silent gap."""
    try:
        step()
    except Exception as error:  # a benchmark that breaks must still leave the others' figures
        report.finding(f"{name} FAILED: {type(error).__name__}: {error}")
        traceback.print_exc()
        report.add(
            Row(name, "benchmark", None, calmirror_text=f"FAILED: {type(error).__name__}", note=str(error)[:200])
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="10,000 events (vdirsyncer may need most of an hour)")
    parser.add_argument("--events", type=int, help="corpus size (default 1,000, or 10,000 with --large)")
    parser.add_argument(
        "--vdirsyncer-timeout-min",
        type=float,
        default=45.0,
        help="give up on one vdirsyncer run after this many minutes (default 45)",
    )
    parser.add_argument("--no-vdirsyncer", action="store_true", help="skip the vdirsyncer peer")
    parser.add_argument("--push-count", type=int, default=200)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["mirror", "push", "serving", "availability"],
        help="leave a benchmark out (repeatable); push and serving need mirror",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table and notes to this Markdown file")
    args = parser.parse_args()
    size = args.events or (10_000 if args.large else 1_000)
    label = f"{size:,} events"
    command = "python bench/run_all.py " + " ".join(sys.argv[1:])
    machine = common.machine_summary()
    print(f"calmirror benchmarks: {label}\n{machine}\ncommand: {command}", flush=True)

    report = Report()
    started = time.perf_counter()
    events = common.generate_events(size)
    mix = common.mix_of(events)
    corpus = (
        f"{mix.total:,} resources: {mix.single:,} single, {mix.weekly:,} weekly with overrides, "
        f"{mix.allday:,} all-day; {mix.vevents:,} VEVENTs; "
        f"{sum(len(t) for _, t in events) / 1024 / 1024:.1f} MiB"
    )
    print(f"corpus: {corpus}", flush=True)
    with common.icloud_with(events) as icloud:
        print(f"emulator loaded in {icloud.load_s:.1f} s", flush=True)
        sc = Scenario(icloud.emu, icloud.root, events, icloud.work_id, report, label)
        try:
            if "mirror" not in args.skip:
                guarded(
                    report,
                    f"mirror ({label})",
                    lambda: bench_mirror.run(
                        sc, vdir_timeout_s=args.vdirsyncer_timeout_min * 60, with_vdirsyncer=not args.no_vdirsyncer
                    ),
                )
            if sc.home is not None and "push" not in args.skip:
                guarded(
                    report,
                    f"push ({label})",
                    lambda: bench_push.run(sc, count=args.push_count, peer_samples=5 if size >= 10_000 else 10),
                )
            if sc.home is not None and "serving" not in args.skip:
                guarded(report, f"serving ({label})", lambda: bench_serving.run(sc))
        finally:
            if sc.vdir is not None:
                sc.vdir.close()
    if "availability" not in args.skip:
        guarded(report, f"availability ({label})", lambda: bench_availability_peer.run(report, size, label))

    elapsed = time.perf_counter() - started
    print(f"\n=== calmirror benchmarks, {label} ({elapsed / 60:.1f} min) ===")
    print(
        f"{machine}\ncommand: {command}\ncorpus: {corpus}\nratio = calmirror ÷ peer; "
        "'better' says which direction wins\n"
    )
    print(common.text_table(report.rows))
    if report.findings:
        print("\nnotes:")
        for text in report.findings:
            print(f"- {text}")
    if args.markdown:
        lines = [
            f"## {label}",
            "",
            f"- when / machine: {machine}",
            f"- command: `{command}`",
            f"- corpus: {corpus}",
            f"- whole run: {elapsed / 60:.1f} min",
            "",
            "ratio = calmirror ÷ peer; 'better' says which direction wins.",
            "",
            common.markdown_table(report.rows),
            "",
        ]
        if report.findings:
            lines += ["Notes:", "", *(f"- {t}" for t in report.findings), ""]
        args.markdown.write_text("\n".join(lines))
        print(f"\nwrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
