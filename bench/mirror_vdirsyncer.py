"""The peer of `bench_mirror`: vdirsyncer (PyPI, not a calmirror dependency) syncing the same
emulator calendar into a plain Radicale of its own, its re-syncs, and the probe of Radicale's
default REPORT limits on the one path where vdirsyncer sends the target a REPORT."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import common
from common import ChildResult, PlainRadicale, Row
from mirror_scenario import VDIRSYNCER_PEER, Scenario, Traffic

from calmirror.emulator import Emulator


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


def setup_vdirsyncer(sc: Scenario) -> str | None:
    """The peer's pair and plain Radicale; returns why it cannot run, or None."""
    if VdirPair.executable() is None:
        return "vdirsyncer is not installed (pip install vdirsyncer)"
    sc.vdir = VdirPair(sc.root / "vdirsyncer", sc.emu, sc.work_id)
    found = sc.vdir.discover()
    if not found.ok or not sc.vdir.local_collection().exists():
        return f"vdirsyncer discover failed: {found.stderr[-500:]}"
    return None


def peer_resync(
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
