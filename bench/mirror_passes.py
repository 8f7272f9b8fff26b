"""One calmirror mirror pass in a child process of its own (`child_mirror`, run as
`bench_mirror.py --child-mirror HOME`), and the same pass with a base revision's code right
before it, side by side (`base_table`)."""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
from common import ChildResult
from mirror_scenario import CHILD_TIMEOUT_S, Scenario, Traffic

from calmirror.home import Home

BENCH_MIRROR = Path(__file__).resolve().parent / "bench_mirror.py"


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
    "sys.path.insert(0, sys.argv[2]); import mirror_passes; "
    "assert calmirror.__file__.startswith(sys.argv[1]), calmirror.__file__; "
    "raise SystemExit(mirror_passes.child_mirror(sys.argv[3], sys.argv[4:] == ['--busy-index']))"
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
        cmd = [sys.executable, str(BENCH_MIRROR), "--child-mirror", str(home.data_dir)]
    if sc.busy_index:
        cmd.append("--busy-index")
    result = common.run_measured(cmd, timeout=timeout)
    if not result.ok:
        raise RuntimeError(f"calmirror mirror child failed ({result.returncode}): {result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    result.maxrss_kib = max(result.maxrss_kib, int(data["vmhwm_kib"]))  # its own last word is exact
    return result, data


def base_then_new(sc: Scenario, step: str, timeout: float) -> tuple[ChildResult, dict[str, object], Traffic]:
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
