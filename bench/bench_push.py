"""Benchmark 3: push latency, local CalDAV PUT -> the appointment stored in iCloud.

    python bench/bench_push.py [--events N] [--count 200]   # alone (no peer)
    python bench/run_all.py [--large]                       # with vdirsyncer as the peer

How: the real daemon (`python -m calmirror --home H run`, a child process, so the emulator
in this process does not share its GIL) with Work linked and mirrored (the corpus of the
run: the double-booking guard checks every new appointment against it). Appointments are
PUT into `appointments/` ONE AT A TIME; after each 201 we wait until the emulator has
logged the PUT of that UID before sending the next. Latency is taken from the moment the
client holds the local 201 to the emulator's log entry: its start (`LoggedRequest.time`,
"reached iCloud") and its end (`time + duration_s`, "stored in iCloud"). Both clocks are
this machine's `time.time()`.

Peer: vdirsyncer has no push of its own; it is run from cron or a timer. Its best case is
a `vdirsyncer sync` started the moment the appointment is written into its local
Radicale; we measure exactly that (a few samples: each one is a full two-sided listing),
ignoring the timer interval a real setup adds on top.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import common
import requests
from common import Report, Row
from mirror_scenario import VDIRSYNCER_PEER, Scenario

from calmirror import credentials
from calmirror.emulator import Emulator
from calmirror.emulator.server import LoggedRequest
from calmirror.home import Home

GOAL_P50_S = 0.3
ARRIVAL_TIMEOUT_S = 15.0
LOCAL_PUT_TIMEOUT_S = 600.0
CLIENT_TIMEOUT_S = 30.0  # what many CalDAV clients and HTTP libraries give a request
_SERVING = re.compile(r"calmirror serving (http://\S+/)")


def appointment(uid: str, n: int) -> str:
    """A client-written appointment (no VTIMEZONE, UTC times), one hour, a weekday in 2028."""
    start = time.gmtime(1_830_000_000 + n * 3 * 3600)  # 2027-12-28 onwards, 3 h apart
    end = time.gmtime(1_830_000_000 + n * 3 * 3600 + 3600)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{time.strftime('%Y%m%dT%H%M%SZ', start)}\r\n"
        f"DTEND:{time.strftime('%Y%m%dT%H%M%SZ', end)}\r\nSUMMARY:Booked appointment {n}\r\n"
        "ATTENDEE;CN=Client;PARTSTAT=ACCEPTED:mailto:client@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def wait_for_put(emu: Emulator, uid: str, timeout: float) -> LoggedRequest | None:
    """The emulator's log entry for the PUT of `uid` that succeeded, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in reversed(emu.requests):
            if entry.method == "PUT" and uid in entry.path and 200 <= entry.status < 300:
                return entry
        time.sleep(0.002)
    return None


@dataclass
class Latencies:
    reached: list[float]
    stored: list[float]
    local_put: list[float]
    lost: int


class RunningDaemon:
    """`calmirror run` in a child process; ready once it logs the URL it serves."""

    def __init__(self, home: Home, log_file: Path) -> None:
        self.home = home
        self.proc, self.url = common.start_server(  # its first mirror pass runs before it is ready: 900 s
            [sys.executable, "-m", "calmirror", "--home", str(home.data_dir), "run"],
            log_file,
            _SERVING,
            timeout=900,
            failure="calmirror run did not become ready",
        )
        acct = credentials.local_account(home)
        self.auth = (acct.username, acct.password)

    def put(self, session: requests.Session, uid: str, body: str) -> requests.Response:
        # A long timeout on purpose: the first PUT after a start can be slow (see measure_calmirror),
        # and a client-side timeout would hide how slow.
        return session.put(
            f"{self.url}{self.auth[0]}/appointments/{uid}.ics",
            data=body.encode(),
            auth=self.auth,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=LOCAL_PUT_TIMEOUT_S,
        )

    def stop(self) -> None:
        self.proc.stop()


def measure_calmirror(sc: Scenario, count: int) -> tuple[Latencies, float]:
    """Appointments one at a time through a freshly started daemon.

    The first PUT is kept in the figures but also shown alone: the double-booking guard
    reads and parses every mirrored event on its first use, inside that client's request.
    """
    assert sc.home is not None
    daemon = RunningDaemon(sc.home, sc.root / "daemon.log")
    lat = Latencies([], [], [], 0)
    try:
        with requests.Session() as session:
            for n in range(count):
                uid = f"bench-push-{n:04d}-{uuid.uuid4().hex[:8]}"
                sent = time.time()
                answer = daemon.put(session, uid, appointment(uid, n))
                acked = time.time()
                if answer.status_code != 201:
                    raise RuntimeError(f"local PUT answered {answer.status_code}: {answer.text[:200]}")
                lat.local_put.append(acked - sent)
                entry = wait_for_put(sc.emu, uid, ARRIVAL_TIMEOUT_S)
                if entry is None:
                    lat.lost += 1
                    continue
                lat.reached.append(entry.time - acked)
                lat.stored.append(entry.time + entry.duration_s - acked)
    finally:
        daemon.stop()
    return lat, daemon.proc.maxrss_kib / 1024


def measure_vdirsyncer(sc: Scenario, samples: int) -> tuple[list[float], list[float]]:
    """Best case for the peer: `vdirsyncer sync` right after the local write; latency to iCloud's PUT end.

    Also returns how long each PUT into the plain Radicale took (same items there as in
    calmirror's mirror): the peer figure for the local PUT itself.
    """
    assert sc.vdir is not None
    out: list[float] = []
    puts: list[float] = []
    with requests.Session() as session:
        for n in range(samples):
            uid = f"bench-vdir-{n:04d}-{uuid.uuid4().hex[:8]}"
            sent = time.time()
            answer = session.put(
                f"{sc.vdir.local_url()}{uid}.ics",
                data=appointment(uid, 1000 + n).encode(),
                auth=("bench", "bench"),
                headers={"Content-Type": "text/calendar"},
                timeout=60,
            )
            acked = time.time()
            puts.append(acked - sent)
            if answer.status_code not in (201, 204):
                raise RuntimeError(f"plain Radicale PUT answered {answer.status_code}")
            result = sc.vdir.sync(600)
            entry = wait_for_put(sc.emu, uid, 1.0)
            if not result.ok or entry is None:
                raise RuntimeError(f"vdirsyncer did not push {uid}: {result.stderr[-500:]}")
            out.append(entry.time + entry.duration_s - acked)
    return out, puts


def run(sc: Scenario, *, count: int, peer_samples: int) -> None:
    bench = f"push latency ({sc.label})"
    peer: list[float] = []
    peer_puts: list[float] = []
    peer_text: str | None = "n/a: vdirsyncer not set up" if sc.vdir is None else None
    if sc.vdir is not None and sc.vdir_synced:
        print(f"\n[push] {sc.label}: vdirsyncer best case, {peer_samples} appointments", flush=True)
        peer, peer_puts = measure_vdirsyncer(sc, peer_samples)
    elif sc.vdir is not None:
        peer_text = "n/a: initial sync did not finish"
    print(f"[push] {sc.label}: calmirror daemon, {count} appointments one at a time", flush=True)
    lat, rss = measure_calmirror(sc, count)
    p50 = common.median(lat.stored)
    met = "met" if p50 < GOAL_P50_S else "NOT met"
    peer_p50 = common.median(peer) if peer else None
    note = f"{len(lat.stored)} of {count} arrived" + (f", {lat.lost} lost" if lat.lost else "")
    add = sc.report.add
    add(
        Row(
            bench,
            "p50, local 201 -> stored in iCloud",
            p50,
            VDIRSYNCER_PEER,
            peer_p50,
            "s",
            goal=f"< {GOAL_P50_S} s ({met})",
            note=note + f"; vdirsyncer: sync started at once, {len(peer)} samples, timer interval not counted",
            peer_text=peer_text,
        )
    )
    add(
        Row(
            bench,
            "p99, local 201 -> stored in iCloud",
            common.percentile(lat.stored, 0.99),
            VDIRSYNCER_PEER,
            common.percentile(peer, 0.99) if peer else None,
            "s",
            note="nearest-rank p99",
            peer_text=peer_text,
        )
    )
    add(
        Row(
            bench,
            "p50, local 201 -> request reaches iCloud",
            common.median(lat.reached),
            unit="s",
            note="emulator log start",
        )
    )
    first = lat.local_put[0] if lat.local_put else float("nan")
    add(
        Row(
            bench,
            "first local PUT after the daemon started",
            first,
            unit="s",
            goal=f"< {CLIENT_TIMEOUT_S:.0f} s, a common client timeout "
            f"({'met' if first < CLIENT_TIMEOUT_S else 'NOT met'})",
            note="the guard parses every mirrored event on first use, in the client's request",
        )
    )
    add(
        Row(
            bench,
            "local PUT of a new appointment, p50",
            common.median(lat.local_put) * 1000,
            "plain Radicale PUT" if peer_puts else "",
            common.median(peer_puts) * 1000 if peer_puts else None,
            "ms",
            note=f"calmirror p99 {common.percentile(lat.local_put, 0.99) * 1000:.0f} ms, includes the double-booking "
            f"guard over the mirrored events; Radicale: {len(peer_puts)} PUTs into its copy of the same calendar",
        )
    )
    add(Row(bench, "peak RSS of the daemon", rss, unit="MiB", note="whole run: server, watcher, push, mirror"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    report = Report()
    events = common.generate_events(args.events)
    with common.icloud_with(events) as icloud:
        from bench_mirror import setup_calmirror

        sc = Scenario(icloud.emu, icloud.root, events, icloud.work_id, report, f"{args.events:,} events")
        setup_calmirror(sc)
        run(sc, count=args.count, peer_samples=0)
    print()
    print(common.text_table(report.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
