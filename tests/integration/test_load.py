"""Load: 20 concurrent CalDAV clients doing mixed reads and writes against `calmirror run` (a child
process, as in production) while the mirror syncs and iCloud answers 503 now and then.

Promises: zero 5xx (and zero dropped connections) from the local server, zero lost writes
(every appointment answered 201/204 reaches iCloud exactly once with its latest content, every
one deleted is gone), the mirror converges, and the p99 local response time is reported.

CI runs 10 s; `pytest --run-slow` runs the full 60 s.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from calmirror import credentials
from calmirror.emulator import Emulator
from calmirror.state import State
from tests.helpers import APP_PASSWORD, APPLE_ID, connected_home, event, status_json, wait_for, wrong_in_icloud

CLIENTS = 20
P99_LIMIT_S = 5.0  # a sanity bound on 2 cores; the measured figure is printed and kept in RELIABILITY.md

QUERY = (
    '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="20270101T000000Z" end="20270201T000000Z"/></C:comp-filter></C:comp-filter>'
    "</C:filter></C:calendar-query>"
)
FREEBUSY = (
    '<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="20270101T000000Z" end="20270108T000000Z"/></C:free-busy-query>'
)
PROPFIND = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    expected: dict[str, str | None] = field(default_factory=dict)  # uid -> latest summary, None if deleted
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client(threading.Thread):
    def __init__(self, n: int, base: str, auth: tuple[str, str], deadline: float, tally: Tally) -> None:
        super().__init__(daemon=True, name=f"client-{n}")
        self.n, self.base, self.auth, self.deadline, self.tally = n, base, auth, deadline, tally
        self.rng = random.Random(n)
        self.mine: dict[str, str] = {}  # uid -> latest summary of this client's live appointments
        self.created = 0

    def call(
        self,
        kind: str,
        method: str,
        url: str,
        ok: tuple[int, ...],
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        started = time.monotonic()
        try:
            answer = requests.request(
                method, url, data=body.encode() if body else None, auth=self.auth, headers=headers or {}, timeout=30
            )
            code = answer.status_code
        except requests.RequestException as exc:
            with self.tally.lock:
                self.tally.server_errors.append(f"{kind} {method} {url}: {exc!r}"[:400])
            return 0
        took = time.monotonic() - started
        with self.tally.lock:
            self.tally.latencies[kind].append(took)
            if code >= 500:
                self.tally.server_errors.append(f"{kind} {method} {url}: {code}")
            elif code not in ok:
                self.tally.unexpected.append(f"{kind} {method} {url}: {code} {answer.text[:120]}")
        return code

    def appointment(self, uid: str, summary: str) -> str:
        day = 1 + (hash(uid) % 28)
        hour = 8 + (hash(uid) // 28 % 9)
        return event(uid, summary, start=f"202701{day:02d}T{hour:02d}0000Z", end=f"202701{day:02d}T{hour:02d}3000Z")

    def run(self) -> None:
        appointments = f"{self.base}appointments/"
        while time.monotonic() < self.deadline:
            roll = self.rng.random()
            if roll < 0.30 or not self.mine:
                uid = f"load-{self.n}-{self.created}"
                self.created += 1
                summary = f"{uid} v1"
                if (
                    self.call(
                        "create",
                        "PUT",
                        f"{appointments}{uid}.ics",
                        (201,),
                        self.appointment(uid, summary),
                        {"Content-Type": "text/calendar", "If-None-Match": "*"},
                    )
                    == 201
                ):
                    self.record(uid, summary)
            elif roll < 0.45:
                uid = self.rng.choice(sorted(self.mine))
                summary = f"{uid} v{self.rng.randrange(2, 1000)}"
                if self.call(
                    "update",
                    "PUT",
                    f"{appointments}{uid}.ics",
                    (201, 204),
                    self.appointment(uid, summary),
                    {"Content-Type": "text/calendar"},
                ) in (201, 204):
                    self.record(uid, summary)
            elif roll < 0.50:
                uid = self.rng.choice(sorted(self.mine))
                if self.call("delete", "DELETE", f"{appointments}{uid}.ics", (200, 204)) in (200, 204):
                    self.record(uid, None)
            elif roll < 0.65:
                uid = self.rng.choice(sorted(self.mine))
                self.call("get", "GET", f"{appointments}{uid}.ics", (200,))
            elif roll < 0.78:
                target = self.rng.choice([appointments, f"{self.base}icloud-home/", f"{self.base}icloud-work/"])
                self.call("propfind", "PROPFIND", target, (207,), PROPFIND, {"Depth": "1"})
            elif roll < 0.93:
                target = self.rng.choice([f"{self.base}icloud-home/", f"{self.base}icloud-work/", appointments])
                self.call("query", "REPORT", target, (207,), QUERY, {"Depth": "1"})
            else:
                self.call("freebusy", "REPORT", appointments, (200,), FREEBUSY, {"Depth": "1"})

    def record(self, uid: str, summary: str | None) -> None:
        if summary is None:
            self.mine.pop(uid, None)
        else:
            self.mine[uid] = summary
        with self.tally.lock:
            self.tally.expected[uid] = summary


class ICloudWeather(threading.Thread):
    """iCloud-side edits to mirror, a 503 with Retry-After now and then, and `sync --now` nudges."""

    def __init__(self, emu: Emulator, pid: int, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="icloud-weather")
        self.emu, self.pid, self.stop = emu, pid, stop
        self.faults = 0
        self.edits = 0

    def run(self) -> None:
        home = self.emu.calendar_id("Home")
        tick = 0
        while not self.stop.wait(0.5):
            tick += 1
            self.emu.put_item(
                home,
                f"weather-{tick}.ics",
                event(f"weather-{tick}", f"Added in iCloud {tick}", start="20270110T100000Z", end="20270110T110000Z"),
            )
            self.edits += 1
            if tick % 4 == 0:
                self.emu.faults.fail(count=1, status=503, retry_after=1)
                self.faults += 1
            if tick % 6 == 0:
                os.kill(self.pid, signal.SIGUSR1)  # what `calmirror sync --now` does


def known_local_bugs() -> list[str]:
    """Local-server bugs this file found, still present in the code (see RELIABILITY.md). While one
    is, a 5xx or dropped connection it explains makes the test xfail instead of fail; once fixed,
    the assertions are strict again by themselves."""
    from calmirror.local.server import _ThreadedWSGIServer

    bugs = []
    if _ThreadedWSGIServer.request_queue_size < 4 * CLIENTS:
        bugs.append(f"listen backlog {_ThreadedWSGIServer.request_queue_size} (local/server.py)")
    if mirror_writes_remove_radicale_temp_folders():
        bugs.append("bulk staging removes Radicale's own temp folders (local/bulk.py)")
    return bugs


@functools.cache
def mirror_writes_remove_radicale_temp_folders() -> bool:
    """Whether a mirror write deletes `.Radicale.tmp-*` folders it did not make.

    Radicale makes such folders for every atomic write, readers included (item cache, sync
    history), so a writer that removes them as its own leftovers pulls files from under a
    reader in flight. (The mirror's own folder is left out: a whole-collection swap replaces it.)
    Checked by doing it, not by reading a constant: it holds whatever local/bulk.py calls its
    scratch folders, and however it writes a batch (whole-collection swap or item by item)."""
    from calmirror.local.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="calmirror-probe-") as scratch:
        store = LocalStore(Path(scratch), "u")
        store.ensure_mirror("probe", "Probe", None)
        store.apply_mirror("probe", [(f"p{n}.ics", event(f"p{n}")) for n in range(20)], [])
        swapped = store.collection_dir("icloud-probe")  # may be replaced whole, under the write lock
        probes = [Path(folder) / ".Radicale.tmp-reader" for folder, _, _ in os.walk(scratch) if Path(folder) != swapped]
        for probe in probes:
            probe.mkdir()
        store.apply_mirror("probe", [(f"p{n}.ics", event(f"p{n}", "changed")) for n in range(20)], ["p0.ics"])
        store.apply_mirror("probe", [("q.ics", event("q"))], ["p1.ics"])
        return not all(probe.is_dir() for probe in probes)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def run_load(tmp_path: Path, seconds: float) -> dict[str, float]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu:
        home = connected_home(
            tmp_path, emu, conflicts=("Work", "Home"), extra_config="\n[sync]\ninterval = 5\n[push]\nmax_backoff = 2\n"
        )
        env = {**os.environ, "CALMIRROR_HOME": str(home.data_dir)}
        log = tmp_path / "daemon.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "calmirror", "run"], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        try:

            def local_url() -> str | None:
                """The URL once the daemon serves and its first mirror pass filled both mirrors (the URL
                and the pid file appear before that pass, with the mirrors still empty)."""
                state = State(home.state_db)
                try:
                    synced = len([m for m in state.mirrors() if m.last_sync]) == 2
                    return state.get_meta("local_url") if home.pid_file.exists() and synced else None
                finally:
                    state.close()

            assert wait_for(lambda: bool(local_url()), 30, every=0.1)
            acct = credentials.local_account(home)
            base = f"{local_url()}{acct.username}/"
            tally = Tally()
            stop = threading.Event()
            weather = ICloudWeather(emu, proc.pid, stop)
            started = time.monotonic()
            clients = [
                Client(n, base, (acct.username, acct.password), started + seconds, tally) for n in range(CLIENTS)
            ]
            weather.start()
            for client in clients:
                client.start()
            for client in clients:
                client.join(seconds + 60)
            stop.set()
            weather.join(5)
            elapsed = time.monotonic() - started
            assert proc.poll() is None, "the daemon died under load"

            work = emu.calendar_id("Work")

            def lost() -> list[str]:
                return wrong_in_icloud(emu, work, tally.expected)

            converge_started = time.monotonic()
            converged = wait_for(lambda: not lost(), 120, every=0.5)
            converge_s = time.monotonic() - converge_started
            assert converged, lost()[:20]
            os.kill(proc.pid, signal.SIGUSR1)
            home_cal = emu.calendar_id("Home")

            def mirror_matches() -> bool:
                state = State(home.state_db)
                try:
                    row = state.mirror(home_cal)
                finally:
                    state.close()
                return row is not None and row.item_count == len(emu.items(home_cal)) and not row.last_error

            assert wait_for(mirror_matches, 30, every=0.5)
            # iCloud can hold the last push a moment before its outbox row is marked done.
            assert wait_for(lambda: status_json(home)["outbox"]["depth"] == 0, 30, every=0.5), status_json(home)
            status = status_json(home)
            assert status["outbox"]["depth"] == 0 and status["outbox"]["failed"] == []
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        daemon_log = log.read_text(errors="replace")
        assert "Traceback" not in daemon_log, daemon_log[-3000:]

    everything = [t for values in tally.latencies.values() for t in values]
    injected_503 = sum(1 for r in emu.requests if r.status == 503)
    figures = {
        "seconds": round(elapsed, 1),
        "clients": CLIENTS,
        "requests": len(everything),
        "requests_per_s": round(len(everything) / elapsed, 1),
        "writes_acknowledged": sum(len(tally.latencies[k]) for k in ("create", "update", "delete")),
        "appointments": len(tally.expected),
        "icloud_503s": injected_503,
        "icloud_edits": weather.edits,
        "p50_ms": round(percentile(everything, 0.50) * 1000),
        "p95_ms": round(percentile(everything, 0.95) * 1000),
        "p99_ms": round(percentile(everything, 0.99) * 1000),
        "max_ms": round(max(everything) * 1000),
        "converged_after_s": round(converge_s, 1),
        **{
            f"p99_{kind}_ms": round(percentile(values, 0.99) * 1000) for kind, values in sorted(tally.latencies.items())
        },
    }
    print(f"\nLOAD: {json.dumps(figures)}")
    if tally.server_errors and known_local_bugs():
        pytest.xfail(f"known local-server bugs {known_local_bugs()}: {tally.server_errors[:5]}")
    assert not tally.server_errors, tally.server_errors[:20]
    assert not tally.unexpected, tally.unexpected[:20]
    assert injected_503 >= 1, "iCloud never answered 503: the run proves less than it claims"
    assert figures["p99_ms"] < P99_LIMIT_S * 1000
    return figures


def test_load_short(tmp_path: Path) -> None:
    run_load(tmp_path, seconds=10)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_load_full_minute(tmp_path: Path) -> None:
    run_load(tmp_path, seconds=60)


# --- the local-server bugs the load run found, each alone -------------------------------------


def _bug(fragment: str) -> bool:
    return any(fragment in bug for bug in known_local_bugs())


@pytest.mark.xfail(
    condition=_bug("listen backlog"),
    strict=False,
    reason="local/server.py keeps socketserver's listen backlog of 5: set request_queue_size = 128",
)
def test_a_burst_of_clients_is_never_dropped(tmp_path: Path) -> None:
    """40 clients connecting at the same instant, 8 times: every one gets an answer."""
    from calmirror.local.server import LocalServer

    server = LocalServer(tmp_path / "store", port=0, username="u", password="p")
    url = server.start()
    failures: list[str] = []
    codes: list[int] = []

    def put(name: str) -> None:
        try:
            codes.append(
                requests.put(
                    f"{url}u/appointments/{name}.ics",
                    data=event(name).encode(),
                    auth=("u", "p"),
                    headers={"Content-Type": "text/calendar"},
                    timeout=30,
                ).status_code
            )
        except requests.RequestException as exc:
            failures.append(repr(exc))

    try:
        for burst in range(8):
            threads = [threading.Thread(target=put, args=(f"burst-{burst}-{n}",)) for n in range(40)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        server.stop()
    assert not failures, failures[:3]
    assert codes == [201] * 320


@pytest.mark.xfail(
    condition=_bug("staging"),
    strict=False,
    reason="local/bulk.py stages under Radicale's own .Radicale.tmp- prefix and removes readers' temp folders",
)
def test_mirror_writes_while_clients_read_give_no_5xx(tmp_path: Path) -> None:
    """Whole-mirror rewrites and item deletes (what a mirror pass does) while clients PROPFIND and
    REPORT the same mirror: every answer is 207."""
    from calmirror.local.server import LocalServer
    from calmirror.local.store import LocalStore

    server = LocalServer(tmp_path / "store", port=0, username="u", password="p")
    url = server.start()
    store = LocalStore(tmp_path / "store", "u")
    store.ensure_mirror("home", "Home", None)
    store.apply_mirror("home", [(f"i{n}.ics", event(f"i{n}")) for n in range(20)], [])
    stop = threading.Event()
    answers: list[tuple[str, int]] = []

    def read(method: str) -> None:
        while not stop.is_set():
            answer = requests.request(
                method,
                f"{url}u/icloud-home/",
                auth=("u", "p"),
                headers={"Depth": "1"},
                data=PROPFIND if method == "PROPFIND" else QUERY,
                timeout=30,
            )
            answers.append((method, answer.status_code))

    readers = [threading.Thread(target=read, args=(m,)) for m in ("PROPFIND", "REPORT") * 3]
    for reader in readers:
        reader.start()
    try:
        started, n = time.monotonic(), 0
        while time.monotonic() - started < 5:
            n += 1
            if n % 2:  # 20 changes in a 20-item mirror: written as one atomic rewrite
                store.apply_mirror("home", [(f"i{k}.ics", event(f"i{k}", f"v{n}")) for k in range(20)], [])
            else:  # one add and one delete: written item by item
                store.apply_mirror("home", [(f"x{n}.ics", event(f"x{n}"))], [f"x{n - 2}.ics"])
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        server.stop()
    bad = [a for a in answers if a[1] != 207]
    assert not bad, f"{len(bad)} of {len(answers)}: {bad[:5]}"
