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
import json
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
from common import ChildResult, PlainRadicale, Report, Row, fmt

from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.testing.homes import connected_home

VDIRSYNCER_PEER = "vdirsyncer"
CHILD_TIMEOUT_S = 900.0


@dataclass
class Traffic:
    """What the emulator (our iCloud) saw during one step."""

    requests: int
    request_bytes: int
    response_bytes: int
    methods: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, emu: Emulator) -> Traffic:
        logged = emu.requests
        methods: dict[str, int] = {}
        for r in logged:
            methods[r.method] = methods.get(r.method, 0) + 1
        return cls(len(logged), sum(r.request_bytes for r in logged), sum(r.response_bytes for r in logged), methods)

    def methods_text(self) -> str:
        return " ".join(f"{m}×{n}" for m, n in sorted(self.methods.items()))


@dataclass
class Scenario:
    """One emulator calendar with the corpus in it, and everything the benches set up around it."""

    emu: Emulator
    root: Path
    events: list[tuple[str, str]]
    work_id: str
    report: Report
    label: str
    home: Home | None = None
    base_code: str | None = None  # the base revision's daemon/ folder, when compared with one
    base_home: Home | None = None
    base_rows: list[BaseRow] = field(default_factory=list)
    vdir: VdirPair | None = None
    vdir_synced: bool = False
    busy_index: bool = False  # each pass builds the busy index first, as the daemon does

    @property
    def size(self) -> int:
        return len(self.events)


class VdirPair:
    """vdirsyncer's config, status and its own plain Radicale, for the emulator's Work calendar."""

    def __init__(self, root: Path, emu: Emulator, work_id: str, *, max_expand_occurrence: int | None = None) -> None:
        self.root = root
        self.work_id = work_id
        self.store = root / "radicale-store"
        self.status = root / "status"
        self.status.mkdir(parents=True, exist_ok=True)
        self.radicale = PlainRadicale(
            self.store, log_requests=True, max_expand_occurrence=max_expand_occurrence, name="vdirsyncer-target"
        ).start()
        self.config = root / "config"
        # Discovery through the emulator's front host: vdirsyncer follows the absolute
        # calendar-home-set on the partition host (checked: it lists Work, Home, Family, Reminders).
        self.config.write_text(f"""[general]
status_path = "{self.status}/"

[pair bench]
a = "icloud"
b = "local"
collections = ["{work_id}"]

[storage icloud]
type = "caldav"
url = "{emu.url}"
username = "{common.APPLE_ID}"
password = "{common.APP_PASSWORD}"

[storage local]
type = "caldav"
url = "{self.radicale.url}"
username = "bench"
password = "bench"
""")

    @staticmethod
    def executable() -> str | None:
        found = shutil.which("vdirsyncer", path=str(Path(sys.executable).parent)) or shutil.which("vdirsyncer")
        return found

    def _run(self, verb: str, timeout: float, stdin: str | None = None) -> ChildResult:
        exe = self.executable()
        assert exe is not None
        return common.run_measured(
            [exe, "-c", str(self.config), verb], timeout=timeout, stdin=stdin, keep_output=20_000
        )

    def discover(self) -> ChildResult:
        """Setup, not measured: finds the calendar on both sides and creates it in the plain Radicale."""
        return self._run("discover", 120, stdin="y\n" * 5)

    def sync(self, timeout: float) -> ChildResult:
        return self._run("sync", timeout)

    def local_collection(self) -> Path:
        return self.store / "collection-root" / "bench" / self.work_id

    def local_url(self) -> str:
        return f"{self.radicale.url}bench/{self.work_id}/"

    def local_count(self) -> int:
        folder = self.local_collection()
        return sum(1 for p in folder.glob("*.ics")) if folder.exists() else 0

    def close(self) -> None:
        self.radicale.close()


# --- the calmirror child ------------------------------------------------------------------


def child_mirror(home_dir: str, busy_index: bool = False) -> int:
    """Run in a child process: one mirror pass over the home's conflict calendars, JSON on stdout.

    `busy_index`: build the busy index first (quick on an empty home), as the daemon does
    before its first pass, so the pass also computes and writes every event's busy-index
    entries; without it they are left to the daemon's upkeep afterwards."""
    from calmirror.testing.homes import engine_for

    home = Home(config_file=Path(home_dir) / "config.toml", data_dir=Path(home_dir))
    started = time.perf_counter()
    engine = engine_for(home)
    if busy_index:
        from calmirror.availability.busy_upkeep import BusyUpkeep

        BusyUpkeep(engine.store, engine.state, engine.settings).ensure()
    client = engine.client()
    remote_s = _time_remote(client)
    ready = time.perf_counter()
    try:
        reports = engine.mirror_pass(client)
    finally:
        client.close()
    done = time.perf_counter()
    engine.state.close()
    result = {
        "setup_s": ready - started,
        "pass_s": done - ready,
        # The time iCloud's answers took, summed. The next multiget is asked for while the pass
        # works on the last answer (`calmirror.prefetch`), so these overlap calmirror's own
        # work and the pass minus them understates it; without overlap it is calmirror's cost.
        "remote_s": remote_s[0],
        "own_s": done - ready - remote_s[0],
        "cpu_s": _cpu_now(),  # this process alone; the parent's `cpu_s` adds its check workers
        "added": sum(r.added for r in reports),
        "updated": sum(r.updated for r in reports),
        "deleted": sum(r.deleted for r in reports),
        "skipped": sum(r.skipped for r in reports),
        "errors": [r.error for r in reports if r.error],
        "vmhwm_kib": common.vm_hwm_kib(),  # not ru_maxrss: see common's docstring
    }
    print(json.dumps(result))
    return 0


def _cpu_now() -> float:
    """User + system CPU of this process so far (imports and discovery included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_remote(client: object) -> list[float]:
    """Sum the time the client's listing and multigets wait for iCloud (the multigets are
    made one at a time, from the thread that fetches ahead of the pass)."""
    spent = [0.0]
    for name in ("sync", "fetch"):
        call = getattr(client, name)

        def timed(*args: object, _call: Any = call, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return _call(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        setattr(client, name, timed)
    return spent


# The base's child imports calmirror from its own code before this folder's `common` puts this
# checkout's `daemon/` first on the path; a module once imported stays the one used.
_BASE_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); import calmirror.testing.homes; "
    "sys.path.insert(0, sys.argv[2]); import bench_mirror; "
    "assert calmirror.__file__.startswith(sys.argv[1]), calmirror.__file__; "
    "raise SystemExit(bench_mirror.child_mirror(sys.argv[3], sys.argv[4:] == ['--busy-index']))"
)


@dataclass
class BaseRow:
    """One pass of the base revision beside this checkout's."""

    step: str
    wall_s: float
    pass_s: float
    own_s: float
    cpu_s: float | None
    requests: int
    vmhwm_mib: float
    new_wall_s: float
    new_pass_s: float
    new_own_s: float
    new_cpu_s: float | None
    new_requests: int
    new_vmhwm_mib: float
    remote_s: float
    new_remote_s: float


def calmirror_pass(
    sc: Scenario, *, base: bool = False, timeout: float = CHILD_TIMEOUT_S
) -> tuple[ChildResult, dict[str, object]]:
    home = sc.base_home if base else sc.home
    assert home is not None
    if base:
        assert sc.base_code is not None
        cmd = [
            sys.executable,
            "-c",
            _BASE_CHILD,
            sc.base_code,
            str(Path(__file__).resolve().parent),
            str(home.data_dir),
        ]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-mirror", str(home.data_dir)]
    if sc.busy_index:
        cmd.append("--busy-index")
    result = common.run_measured(cmd, timeout=timeout)
    if not result.ok:
        raise RuntimeError(f"calmirror mirror child failed ({result.returncode}): {result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    result.maxrss_kib = max(result.maxrss_kib, int(data["vmhwm_kib"]))  # its own last word is exact
    return result, data


def _base_then_new(sc: Scenario, step: str, timeout: float) -> tuple[ChildResult, dict[str, object], Traffic]:
    """The base's pass (when compared with one) right before this checkout's, which is returned."""
    if sc.base_home is None:
        sc.emu.clear_requests()
        mine, data = calmirror_pass(sc, timeout=timeout)
        return mine, data, Traffic.of(sc.emu)
    print(f"[mirror] {sc.label}: {step}, base revision", flush=True)
    sc.emu.clear_requests()
    base, base_data = calmirror_pass(sc, base=True, timeout=timeout)
    base_traffic = Traffic.of(sc.emu)
    print(f"[mirror] {sc.label}: {step}, this checkout", flush=True)
    sc.emu.clear_requests()
    mine, data = calmirror_pass(sc, timeout=timeout)
    traffic = Traffic.of(sc.emu)
    sc.base_rows.append(
        BaseRow(
            step,
            base.wall_s,
            float(base_data["pass_s"]),  # type: ignore[arg-type]
            float(base_data["own_s"]),  # type: ignore[arg-type]
            base.cpu_s,
            base_traffic.requests,
            base.maxrss_mib,
            mine.wall_s,
            float(data["pass_s"]),  # type: ignore[arg-type]
            float(data["own_s"]),  # type: ignore[arg-type]
            mine.cpu_s,
            traffic.requests,
            mine.maxrss_mib,
            float(base_data["remote_s"]),  # type: ignore[arg-type]
            float(data["remote_s"]),  # type: ignore[arg-type]
        )
    )
    return mine, data, traffic


def base_table(sc: Scenario) -> str:
    """The base beside this checkout, pass by pass: wall and own time, CPU, requests, peak RSS."""

    def cell(value: float | None, digits: int = 2) -> str:
        return "–" if value is None else f"{value:,.{digits}f}"

    def ratio(new: float | None, base: float | None) -> str:
        return "–" if new is None or not base else f"{new / base:.2f}"

    lines = [
        f"| pass ({sc.label}) | figure | base | this code | ratio this/base |",
        "|---|---|---:|---:|---:|",
    ]
    for row in sc.base_rows:
        for label, base, new, digits in (
            ("whole process wall (s)", row.wall_s, row.new_wall_s, 2),
            ("pass (s)", row.pass_s, row.new_pass_s, 3),
            ("iCloud's answers, summed (s)", row.remote_s, row.new_remote_s, 3),
            ("the pass minus iCloud's answers (s)", row.own_s, row.new_own_s, 3),
            ("CPU of the process and its check workers, user + sys (s)", row.cpu_s, row.new_cpu_s, 2),
            ("requests to iCloud", float(row.requests), float(row.new_requests), 0),
            ("peak RSS (MiB)", row.vmhwm_mib, row.new_vmhwm_mib, 0),
        ):
            lines.append(f"| {row.step} | {label} | {cell(base, digits)} | {cell(new, digits)} | {ratio(new, base)} |")
    return "\n".join(lines)


# --- the benchmark --------------------------------------------------------------------------


def setup_calmirror(sc: Scenario) -> None:
    """A calmirror home connected to the emulator, Work linked and mirrored (setup, not measured);
    another for the base revision when compared with one."""
    sc.home = connected_home(sc.root / "calmirror-home", sc.emu, conflicts=("Work",))
    if sc.base_code is not None:
        sc.base_home = connected_home(sc.root / "base-home", sc.emu, conflicts=("Work",))


def setup_vdirsyncer(sc: Scenario) -> str | None:
    """The peer's pair and plain Radicale; returns why it cannot run, or None."""
    if VdirPair.executable() is None:
        return "vdirsyncer is not installed (pip install vdirsyncer)"
    sc.vdir = VdirPair(sc.root / "vdirsyncer", sc.emu, sc.work_id)
    found = sc.vdir.discover()
    if not found.ok or not sc.vdir.local_collection().exists():
        return f"vdirsyncer discover failed: {found.stderr[-500:]}"
    return None


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
    mine, data, my_traffic = _base_then_new(sc, "initial mirror", child_timeout_s)
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
    mine, data, my_traffic = _base_then_new(sc, "idle re-sync", child_timeout_s)
    peer, peer_traffic, why = _peer_resync(sc, vdir_timeout_s, peer_skip)
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
    mine, data, my_traffic = _base_then_new(sc, "one-change re-sync", child_timeout_s)
    if data["updated"] != 1:
        sc.report.finding(f"calmirror one-change re-sync updated {data['updated']} items (expected 1)")
    peer, peer_traffic, why = _peer_resync(sc, vdir_timeout_s, peer_skip)
    _mirror_rows(sc, "one-change re-sync", mine, data, my_traffic, peer, peer_traffic, why, {})

    limits_probe(sc)


def _peer_resync(
    sc: Scenario, timeout: float, skip: str | None
) -> tuple[ChildResult | None, Traffic | None, str | None]:
    if skip or sc.vdir is None:
        return None, None, skip
    if not sc.vdir_synced:
        return None, None, "n/a: initial sync did not finish"
    sc.emu.clear_requests()
    sc.vdir.radicale.mark()
    result = sc.vdir.sync(timeout)
    traffic = Traffic.of(sc.emu)
    local = sc.vdir.radicale.traffic()
    sc.report.finding(
        f"vdirsyncer re-sync: exit {result.returncode}; its local Radicale answered "
        f"{local.requests} requests, {local.response_bytes / 1024:.1f} KiB (gzip on the wire); "
        f"iCloud side {traffic.requests} requests, {traffic.response_bytes / 1024:.1f} KiB"
    )
    return result, traffic, None


def limits_probe(sc: Scenario) -> None:
    """vdirsyncer against a plain Radicale with DEFAULT REPORT limits, on the path that sends it a REPORT.

    Normal vdirsyncer runs never send the target a REPORT (it lists with PROPFIND and uploads
    with PUT), so the default `max_expand_occurrence` (10,000 VEVENTs per REPORT answer) is
    only reached when vdirsyncer must prefetch everything from the target: a sync without its
    status (a new machine, a deleted status folder). It then asks for every item in ONE
    calendar-multiget. We run exactly that, with the status set aside and restored after.
    """
    if sc.vdir is None or not sc.vdir_synced:
        sc.report.add(
            Row(
                f"default REPORT limits ({sc.label})",
                "vdirsyncer sync without status into Radicale with max_expand_occurrence 10000",
                None,
                VDIRSYNCER_PEER,
                None,
                peer_text="n/a: initial sync did not finish" if sc.vdir else "skipped",
            )
        )
        return
    print(f"[mirror] {sc.label}: vdirsyncer without status against default REPORT limits", flush=True)
    kept = sc.vdir.root / "status-kept"
    shutil.move(str(sc.vdir.status), str(kept))
    sc.vdir.status.mkdir()
    try:
        sc.vdir.discover()  # vdirsyncer refuses to sync before it has rediscovered the pair
        sc.vdir.radicale.mark()
        result = sc.vdir.sync(900)
        local = sc.vdir.radicale.traffic()
        log = sc.vdir.radicale.log_tail()
    finally:
        shutil.rmtree(sc.vdir.status, ignore_errors=True)
        shutil.move(str(kept), str(sc.vdir.status))
    vevents = common.mix_of(sc.events).vevents
    reports = [status for method, status in local.statuses if method == "REPORT"]
    hit = "occurrences limit" in log and any(status == 400 for status in reports)
    first_error = next(
        (line for line in result.stderr.splitlines() if line.startswith(("error:", "critical:"))),
        result.stderr.strip()[-200:],
    )
    if hit:
        text = (
            f"FAILED: Radicale answered the multiget 400 'REPORT occurrences limit of 10000 hit' "
            f"({vevents:,} VEVENTs in {sc.size:,} resources)"
        )
    elif result.ok:
        text = "ok"
    else:
        text = f"REPORT answered {reports}; vdirsyncer then exited {result.returncode}: {first_error[:160]}"
    sc.report.add(
        Row(
            f"default REPORT limits ({sc.label})",
            "vdirsyncer sync without status into Radicale with max_expand_occurrence 10000",
            None,
            VDIRSYNCER_PEER,
            result.wall_s if result.ok else None,
            "s",
            peer_text=None if result.ok else text,
            note=f"local side: {' '.join(f'{k}×{v}' for k, v in sorted(local.by_method.items()))}; "
            f"{vevents:,} VEVENTs; calmirror raises the limit for its own server and fetches in "
            "batches of 100",
        )
    )


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
