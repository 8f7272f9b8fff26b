"""Mixed load: 20 CalDAV clients for 60 s against the real daemon, and against plain Radicale.

    python bench/bench_load.py [--events 10000] [--clients 20] [--seconds 60] [--base-pythonpath DIR]

The daemon (`python -m calmirror --home H run`, a child process) serves a home whose Work
calendar (the generated corpus of `--events` resources) is already mirrored, linked, and
checked by the double-booking guard (its default, "warn"). Every client loops until the
deadline over a mix of what calendar clients and booking tools send:

- put (50 %): a new appointment into `appointments/` (seven in ten) or a change to one of
  the client's own (three in ten); the guard checks it and the daemon pushes it to iCloud;
- get (25 %): one of the client's own appointments;
- query (15 %): a one-week calendar-query with calendar-data on the mirror;
- freebusy (10 %): a one-week free-busy REPORT on the mirror.

Then the same clients send the same mix to a plain Radicale (`python -m radicale`,
`auth type = none`) serving a copy of the same store, right after, in the same run. With
`--base-pythonpath` a daemon of another revision (its `daemon/` folder) runs the same
load first on another copy of the home, so a change is measured against the code before
it on the same box at about the same time. Latency is from sending to the whole answer;
throughput is answers per second of the run. The box's load average is printed with it,
and how late a 10 ms sleep woke in the clients' own process (its interpreter lock and the
wait for a core are inside every latency measured); `--client-processes N` spreads the same
clients over N processes.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import re
import shutil
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import common
import requests
from bench_mirror import setup_calmirror
from common import PlainRadicale, Report
from mirror_passes import calmirror_pass
from mirror_scenario import Scenario

from calmirror import credentials
from calmirror.home import Home

_SERVING = re.compile(r"calmirror serving (http://\S+/)")
KINDS = ("put", "get", "query", "freebusy")
ONLY_ROLL = {"put": 0.0, "get": 0.6, "query": 0.8, "freebusy": 0.95}  # a roll of the mix that picks that kind
WEEK = ("20270104T000000Z", "20270111T000000Z")
QUERY = (
    '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
    f'<C:comp-filter name="VEVENT"><C:time-range start="{WEEK[0]}" end="{WEEK[1]}"/></C:comp-filter>'
    "</C:comp-filter></C:filter></C:calendar-query>"
)
FREEBUSY = (
    '<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    f'<C:time-range start="{WEEK[0]}" end="{WEEK[1]}"/></C:free-busy-query>'
)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # the clients' process: how late a 10 ms sleep woke
    lock: threading.Lock = field(default_factory=threading.Lock)


def watch_lag(deadline: float, lags: list[float]) -> threading.Thread:
    """A thread that sleeps 10 ms at a time until `deadline` and records how late it woke: the
    time a client thread waits for its own process's interpreter lock (and for a core) before
    it can read an answer, which is inside every latency the clients measure."""

    def run() -> None:
        while (before := time.perf_counter()) < deadline:
            time.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    thread = threading.Thread(target=run, daemon=True, name="load-lag")
    thread.start()
    return thread


#: Where the clients' bookings go: from the end of 2027, client n's from n × 1,000 × 1.5 h on,
#: so most land past the busy index's two-year horizon (the guard then expands every series
#: reaching there); with --near, all within 30–330 days of today, inside the horizon.
BOOKINGS = {"first": 1_830_000_000, "wrap": 0}


def appointment(uid: str, n: int, version: int) -> str:
    """A client's appointment (UTC, 30 minutes), spread by `n` (see `BOOKINGS`)."""
    slot = n % BOOKINGS["wrap"] if BOOKINGS["wrap"] else n
    start = time.gmtime(BOOKINGS["first"] + slot * 5400)
    end = time.gmtime(BOOKINGS["first"] + slot * 5400 + 1800)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{time.strftime('%Y%m%dT%H%M%SZ', start)}\r\n"
        f"DTEND:{time.strftime('%Y%m%dT%H%M%SZ', end)}\r\nSUMMARY:Load {uid} v{version}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Client(threading.Thread):
    def __init__(
        self,
        n: int,
        base: str,
        mirror: str,
        auth: tuple[str, str],
        deadline: float,
        tally: Tally,
        only: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"load-client-{n}")
        self.n, self.base, self.mirror, self.auth, self.deadline, self.tally = n, base, mirror, auth, deadline, tally
        self.only = only  # one kind of request instead of the mix (a get needs one put first)
        self.rng = random.Random(n)
        self.mine: list[str] = []

    def call(
        self, kind: str, method: str, url: str, ok: tuple[int, ...], body: str | None = None, **headers: str
    ) -> bool:
        started = time.perf_counter()
        try:
            answer = requests.request(
                method, url, data=body.encode() if body else None, auth=self.auth, headers=headers, timeout=120
            )
            code, text = answer.status_code, answer.text[:150]
        except requests.RequestException as exc:
            code, text = 0, repr(exc)[:150]
        took = time.perf_counter() - started
        with self.tally.lock:
            if code in ok:
                self.tally.latencies[kind].append(took)
            else:
                self.tally.failures[kind] += 1
                if len(self.tally.examples) < 5:
                    self.tally.examples.append(f"{kind} {method} {url}: {code} {text}")
        return code in ok

    def run(self) -> None:
        appointments = f"{self.base}appointments/"
        made = 0
        while time.perf_counter() < self.deadline:
            roll = self.rng.random() if self.only is None else ONLY_ROLL[self.only]
            first = not self.mine and self.only in (None, "put", "get")  # a get needs an appointment of its own
            if roll < 0.50 or first:
                if roll < 0.35 or first:
                    uid = f"load-{self.n}-{made}"
                    number = self.n * 1000 + made
                    made += 1
                    if self.call(
                        "put", "PUT", f"{appointments}{uid}.ics", (201,), appointment(uid, number, 1),
                        **{"Content-Type": "text/calendar", "If-None-Match": "*"},
                    ):  # fmt: skip
                        self.mine.append(uid)
                else:
                    uid = self.rng.choice(self.mine)
                    number = self.n * 1000 + int(uid.rsplit("-", 1)[1])
                    self.call(
                        "put", "PUT", f"{appointments}{uid}.ics", (201, 204),
                        appointment(uid, number, self.rng.randrange(2, 1000)), **{"Content-Type": "text/calendar"},
                    )  # fmt: skip
            elif roll < 0.75:
                self.call("get", "GET", f"{appointments}{self.rng.choice(self.mine)}.ics", (200,))
            elif roll < 0.90:
                self.call("query", "REPORT", self.mirror, (207,), QUERY, Depth="1")
            else:
                self.call("freebusy", "REPORT", self.mirror, (200,), FREEBUSY, Depth="1")


@dataclass
class LoadResult:
    target: str
    seconds: float
    tally: Tally
    maxrss_mib: float = 0.0
    max_pss_mib: float = 0.0  # the daemon and its children (reader processes, check workers), sampled
    load_avg: str = ""

    def lag(self) -> str:
        lags = self.tally.lags
        if not lags:
            return "–"
        p50, p99 = common.percentile(lags, 0.50) * 1000, common.percentile(lags, 0.99) * 1000
        return f"p50 {p50:.1f} / p99 {p99:.1f} / max {max(lags) * 1000:.0f} ms"

    def answered(self) -> int:
        return sum(len(v) for v in self.tally.latencies.values())

    def line(self, kind: str | None) -> str:
        values = [t for v in self.tally.latencies.values() for t in v] if kind is None else self.tally.latencies[kind]
        failed = sum(self.tally.failures.values()) if kind is None else self.tally.failures[kind]
        if not values:
            return f"| {self.target} | {kind or 'all'} | 0 | – | – | – | {failed} |"
        return (
            f"| {self.target} | {kind or 'all'} | {len(values)} | {len(values) / self.seconds:.1f} | "
            f"{common.percentile(values, 0.50) * 1000:.0f} | {common.percentile(values, 0.99) * 1000:.0f} | {failed} |"
        )


def run_load(
    target: str,
    base: str,
    mirror: str,
    auth: tuple[str, str],
    clients: int,
    seconds: float,
    only: str | None = None,
    processes: int = 1,
) -> LoadResult:
    print(f"[load] {target}: {clients} clients × {seconds:.0f} s{f', only {only}' if only else ''}", flush=True)
    for body in (QUERY, FREEBUSY):  # untimed: each server builds its caches on its first read
        requests.request("REPORT", mirror, data=body.encode(), auth=auth, headers={"Depth": "1"}, timeout=600)
    print(f"[load] {target}: caches built, clients start", flush=True)
    if processes > 1:
        tally, elapsed = _clients_in_processes(processes, base, mirror, auth, clients, seconds, only)
        return LoadResult(target, elapsed, tally, load_avg=_load_avg())
    tally = Tally()
    started = time.perf_counter()
    threads: list[threading.Thread] = [
        Client(n, base, mirror, auth, started + seconds, tally, only) for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    threads.append(watch_lag(started + seconds, tally.lags))
    for thread in threads:
        thread.join(seconds + 180)
    elapsed = time.perf_counter() - started
    return LoadResult(target, elapsed, tally, load_avg=_load_avg())


Outcome = tuple[dict[str, list[float]], dict[str, int], list[str], list[float]]


def _clients_in_processes(
    processes: int,
    base: str,
    mirror: str,
    auth: tuple[str, str],
    clients: int,
    seconds: float,
    only: str | None,
) -> tuple[Tally, float]:
    """The same clients (numbers, mix, seeds) as threads of `processes` child processes, which
    start together once all are ready; their tallies are merged. In one process the clients'
    own interpreter lock (every query answer is ~700 KB read and decoded in Python) is part
    of every latency measured."""
    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[int] = context.Queue()
    results: multiprocessing.Queue[Outcome] = context.Queue()
    go = context.Event()
    children = [
        context.Process(
            target=_client_process,
            args=(list(range(first, clients, processes)), base, mirror, auth, seconds, only, ready, go, results),
            daemon=True,
        )
        for first in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=300)
    started = time.perf_counter()
    go.set()
    tally = Tally()
    for _ in children:
        latencies, failures, examples, lags = results.get(timeout=seconds + 300)
        tally.lags.extend(lags)
        for kind, values in latencies.items():
            tally.latencies[kind].extend(values)
        for kind, count in failures.items():
            tally.failures[kind] += count
        tally.examples.extend(examples[: max(0, 5 - len(tally.examples))])
    elapsed = time.perf_counter() - started
    for child in children:
        child.join(30)
    return tally, elapsed


def _client_process(
    numbers: list[int],
    base: str,
    mirror: str,
    auth: tuple[str, str],
    seconds: float,
    only: str | None,
    ready: multiprocessing.Queue[int],
    go: EventType,
    results: multiprocessing.Queue[Outcome],
) -> None:
    ready.put(len(numbers))
    go.wait()
    tally = Tally()
    started = time.perf_counter()
    threads: list[threading.Thread] = [Client(n, base, mirror, auth, started + seconds, tally, only) for n in numbers]
    for thread in threads:
        thread.start()
    threads.append(watch_lag(started + seconds, tally.lags))
    for thread in threads:
        thread.join(seconds + 180)
    results.put((dict(tally.latencies), dict(tally.failures), tally.examples, tally.lags))


def _load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def load_daemon(
    target: str,
    home_dir: Path,
    clients: int,
    seconds: float,
    pythonpath: str | None = None,
    only: str | None = None,
    launcher: Sequence[str] = ("-m", "calmirror"),
    processes: int = 1,
    settle: bool = False,
) -> LoadResult:
    """The daemon of this checkout (or of `pythonpath`) on `home_dir`, under the load;
    `launcher`: what follows the interpreter to start calmirror (a tracing wrapper, say);
    `settle`: the clients start only once the daemon's start-up work is done (`settled`)."""
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    proc = common.BackgroundProcess(
        [sys.executable, *launcher, "--home", str(home_dir), "run"], home_dir / "daemon.log", env=env
    )
    deadline = time.monotonic() + 900
    while not (found := _SERVING.search(proc.log_text())):
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{target}: the daemon did not start: {proc.log_text()[-2000:]}")
        time.sleep(0.05)
    acct = credentials.local_account(_home(home_dir))
    user_url = f"{found.group(1)}{acct.username}/"
    if settle:
        waited = settled(proc.proc.pid)
        print(f"[load] {target}: start-up work done {waited:.1f} s after it began serving", flush=True)
    pss = PssSampler(proc.proc.pid)
    pss.start()
    try:
        result = run_load(
            target,
            user_url,
            f"{user_url}icloud-work/",
            (acct.username, acct.password),
            clients,
            seconds,
            only,
            processes,
        )
    finally:
        pss.stop()
        proc.stop()
    result.maxrss_mib = proc.maxrss_kib / 1024
    result.max_pss_mib = pss.max_kib / 1024
    return result


def settled(pid: int, quiet: float = 3.0, below: float = 0.05, limit: float = 900.0) -> float:
    """Wait until the process and its children used under `below` of a core for `quiet` s
    running (its start-up work done: the busy index checked, the time-range index warmed),
    or `limit` s passed; returns the seconds waited. A daemon that has run for a while is in
    this state; a load that starts at once measures its start-up too (`--cold`)."""
    tick = os.sysconf("SC_CLK_TCK")
    began = last_busy = time.monotonic()
    used = _cpu_ticks(pid)
    while (now := time.monotonic()) - last_busy < quiet and now - began < limit:
        time.sleep(0.5)
        before, used = used, _cpu_ticks(pid)
        if (used - before) / tick > below * 0.5:
            last_busy = time.monotonic()
    return time.monotonic() - began


def _cpu_ticks(pid: int) -> int:
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total


class PssSampler(threading.Thread):
    """The largest sum of PSS (`/proc/PID/smaps_rollup`) over a process and its descendants,
    sampled every half second: a page a forked child shares with its parent counts once, split
    between them, where adding each one's RSS would count it in each."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="pss-sampler")
        self.pid = pid
        self.max_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            self.max_kib = max(self.max_kib, sum(_pss_kib(pid) for pid in _tree(self.pid)))

    def stop(self) -> None:
        self._done.set()
        self.join(5)


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@contextlib.contextmanager
def mirrored_home(n_events: int, tag: str, busy_index: bool = False) -> Iterator[tuple[Scenario, Path]]:
    """The emulator with `n_events` generated events, a home with Work mirrored once, and a
    pristine copy of that home for each daemon to start from a copy of (this and bench_memory).
    `busy_index`: the pass writes the busy index's entries with its batches, as the daemon's
    own passes do; without it the daemon builds the index at its start."""
    events = common.generate_events(n_events)
    with common.icloud_with(events) as icloud:
        sc = Scenario(icloud.emu, icloud.root, events, icloud.work_id, Report(), f"{n_events:,} events")
        sc.busy_index = busy_index
        setup_calmirror(sc)
        assert sc.home is not None
        print(f"[{tag}] mirroring {n_events:,} events; load {_load_avg()}", flush=True)
        calmirror_pass(sc)
        pristine = sc.root / "pristine-home"
        shutil.copytree(sc.home.data_dir, pristine, symlinks=True)
        yield sc, pristine


def _home(data_dir: Path) -> Home:
    return Home(config_file=data_dir / "config.toml", data_dir=data_dir)


def load_plain(
    store: Path, username: str, clients: int, seconds: float, only: str | None = None, processes: int = 1
) -> LoadResult:
    with PlainRadicale(store) as radicale:
        user_url = f"{radicale.url}{username}/"
        result = run_load(
            "plain Radicale", user_url, f"{user_url}icloud-work/", (username, "x"), clients, seconds, only, processes
        )
        radicale.stop()
        result.maxrss_mib = radicale.maxrss_kib / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--base-pythonpath", help="the daemon/ folder of another revision, measured first")
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--only", choices=KINDS, help="send only this kind of request instead of the mix")
    parser.add_argument("--near", action="store_true", help="bookings within the next year (inside the horizon)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start the clients as soon as the daemon serves, during its start-up work, on a home mirrored "
        "without the busy index (the daemon then builds it while the clients run); default: the pass writes "
        "the index as the daemon's passes do, and the clients start once the daemon is idle",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="spread the clients over this many processes (default: all threads of this one; see RESULTS.md: "
        "the clients' own interpreter lock was not what made a PUT slow)",
    )
    args = parser.parse_args()
    if args.near:
        today = int(time.time()) // 86_400 * 86_400
        BOOKINGS.update(first=today + 30 * 86_400, wrap=300 * 16)  # 300 days of 1.5 h slots
    results: list[LoadResult] = []
    with mirrored_home(args.events, "load", busy_index=not args.cold) as (sc, pristine):
        assert sc.home is not None
        if args.base_pythonpath:
            base_home = sc.root / "base-home"
            shutil.copytree(pristine, base_home, symlinks=True)
            results.append(
                load_daemon(
                    "calmirror (base)",
                    base_home,
                    args.clients,
                    args.seconds,
                    args.base_pythonpath,
                    only=args.only,
                    processes=args.client_processes,
                    settle=not args.cold,
                )
            )
        results.append(
            load_daemon(
                "calmirror",
                sc.home.data_dir,
                args.clients,
                args.seconds,
                only=args.only,
                processes=args.client_processes,
                settle=not args.cold,
            )
        )
        if not args.no_plain:
            username = credentials.local_account(_home(pristine)).username
            results.append(
                load_plain(pristine / "store", username, args.clients, args.seconds, args.only, args.client_processes)
            )
    print()
    print(f"machine: {common.machine_summary()}; revision {common.revision()}")
    print(
        f"{args.clients} clients in {args.client_processes} process(es) × {args.seconds:.0f} s"
        f" at {args.events:,} mirrored events"
        + ("; bookings within the next year" if args.near else "; bookings from the end of 2027 on")
        + ("; clients start while the daemon starts up" if args.cold else "; clients start once the daemon is idle")
    )
    print("| target | kind | answered | per s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|")
    for result in results:
        for kind in (None, *KINDS):
            print(result.line(kind))
    for result in results:
        print(
            f"- {result.target}: {result.answered() / result.seconds:.1f} answers/s over {result.seconds:.1f} s; "
            f"peak RSS {result.maxrss_mib:.0f} MiB (the main process, VmHWM)"
            + (f"; peak PSS {result.max_pss_mib:.0f} MiB (it and its children)" if result.max_pss_mib else "")
            + f"; load average after the run {result.load_avg}"
            + f"; the clients' 10 ms sleeps woke late by {result.lag()}"
        )
        for example in result.tally.examples:
            print(f"  - e.g. {example}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
