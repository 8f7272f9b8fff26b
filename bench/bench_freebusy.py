"""A 30-day free-busy REPORT through the running daemon, against the same answer in process.

    python bench/bench_freebusy.py [--events 10000] [--requests 300] [--base-pythonpath DIR]
        [--plain-requests 5] [--no-plain] [--json]

Issue 15's goal is "availability 30 days, daemon: < 5 ms", and the answer itself costs a
fraction of a millisecond in process, so this bench splits a REPORT's time into its parts.
The home is mirrored once (the generated corpus in the Work calendar, as in `bench_load.py`);
then, on copies of it:

- HTTP: the real daemon (`calmirror run`, a child) is sent `--requests` sequential 30-day
  free-busy REPORTs on `busy/` and on the mirror, windows a day apart, from one
  `requests.Session` (it reuses the connection when the server keeps it open). With
  `--base-pythonpath` a daemon of that code runs beside it on its own copy, and the two are
  asked in turn, request by request, so both see the same load.
- in process: the daemon's own free-busy callable (`make_freebusy` over `BusySources`, as
  the daemon wires it) and the whole WSGI app of the local server (Host check, middleware,
  callable; no socket), called directly in a child of that side's code.
- peer: plain Radicale's free-busy REPORT on a copy of the same store (`--plain-requests`
  of them: it parses every event each time).

Printed per figure: median, p95, min (ms), the box's load average before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import common
import requests
from bench_mirror import Scenario, calmirror_pass, setup_calmirror
from common import PlainRadicale, Report

from calmirror import credentials
from calmirror.home import Home

_SERVING = re.compile(r"calmirror serving (http://\S+/)")
MIRROR = "icloud-work"
COLLECTIONS = ("busy", MIRROR)
FIRST_DAY = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SETTLE_S = 5.0  # after the daemon serves: its busy index warms and `busy/` fills
WARM_REQUESTS = 20

IN_PROCESS = r"""
import io, json, statistics, sys, time, datetime as dt
from pathlib import Path
from calmirror import config
from calmirror.availability.guard import make_freebusy
from calmirror.availability.sources import BusySources
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.local.server import LocalServer
from calmirror.state import State
root, count, collections = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
home = Home(config_file=root / "config.toml", data_dir=root)
settings = config.load(home.config_file)
state = State(home.state_db)
engine = Engine(home, settings, state)
try:
    busy = BusySources(engine.store, state, settings, notified=True)
except TypeError:
    busy = BusySources(engine.store, state, settings)
freebusy = make_freebusy(busy)
acct = engine.local_account
server = LocalServer(home.store_dir, port=0, username=acct.username, password=acct.password, freebusy=freebusy)
server.start()
app = server._httpd.get_app()
host = server.url.split("//", 1)[1].rstrip("/")
import base64
authorization = "Basic " + base64.b64encode(f"{acct.username}:{acct.password}".encode()).decode()
first = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
def window(n):
    start = first + dt.timedelta(days=n % 20)
    return start, start + dt.timedelta(days=30)
def body(n):
    s, e = window(n)
    return (f'<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f'<C:time-range start="{s:%Y%m%dT%H%M%SZ}" end="{e:%Y%m%dT%H%M%SZ}"/></C:free-busy-query>').encode()
out = {}
for collection in collections:
    path = f"/{acct.username}/{collection}/"
    for n in range(20):
        freebusy(path, *window(n))
    times = []
    for n in range(count):
        t0 = time.perf_counter()
        freebusy(path, *window(n))
        times.append(time.perf_counter() - t0)
    out[f"callable {collection}"] = times
    times = []
    for n in range(count + 20):
        data = body(n)
        environ = {"REQUEST_METHOD": "REPORT", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
                   "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/xml", "HTTP_DEPTH": "1",
                   "HTTP_HOST": host, "HTTP_AUTHORIZATION": authorization, "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": host.rsplit(":", 1)[1], "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
                   "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
                   "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
                   "wsgi.run_once": False}
        status = []
        t0 = time.perf_counter()
        answer = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
        took = time.perf_counter() - t0
        assert status[0].startswith("200") and b"VFREEBUSY" in answer, (status, answer[:200])
        if n >= 20:
            times.append(took)
    out[f"WSGI app {collection}"] = times
server.stop()
print(json.dumps(out))
"""


def report_body(n: int) -> bytes:
    start = FIRST_DAY + dt.timedelta(days=n % 20)
    end = start + dt.timedelta(days=30)
    return (
        '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f'<C:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/></C:free-busy-query>'
    ).encode()


class Side:
    """One daemon (this checkout's, or another revision's) on its own copy of the home."""

    def __init__(self, label: str, home_dir: Path, pythonpath: str | None) -> None:
        self.label, self.home_dir = label, home_dir
        self.env = {**os.environ, "PYTHONPATH": pythonpath or str(common.REPO / "daemon")}
        self.proc: common.BackgroundProcess | None = None
        self.session = requests.Session()
        self.url = ""
        self.auth = ("", "")
        self.times: dict[str, list[float]] = {c: [] for c in COLLECTIONS}
        self.connections = 0

    def start(self) -> None:
        self.proc = common.BackgroundProcess(
            [sys.executable, "-m", "calmirror", "--home", str(self.home_dir), "run"],
            self.home_dir / "daemon.log",
            env=self.env,
        )
        deadline = time.monotonic() + 900
        while not (found := _SERVING.search(self.proc.log_text())):
            if not self.proc.alive() or time.monotonic() > deadline:
                self.proc.stop()
                raise RuntimeError(f"{self.label}: the daemon did not start: {self.proc.log_text()[-2000:]}")
            time.sleep(0.05)
        acct = credentials.local_account(Home(config_file=self.home_dir / "config.toml", data_dir=self.home_dir))
        self.url, self.auth = found.group(1), (acct.username, acct.password)

    def report(self, collection: str, n: int) -> float:
        t0 = time.perf_counter()
        answer = self.session.request(
            "REPORT",
            f"{self.url}{self.auth[0]}/{collection}/",
            data=report_body(n),
            auth=self.auth,
            headers={"Depth": "1", "Content-Type": "application/xml"},
            timeout=120,
        )
        took = time.perf_counter() - t0
        if answer.status_code != 200 or "VFREEBUSY" not in answer.text:
            raise RuntimeError(f"{self.label}: free-busy answered {answer.status_code}: {answer.text[:200]}")
        return took

    def in_process(self, count: int) -> dict[str, list[float]]:
        done = common.run_measured(
            [sys.executable, "-c", IN_PROCESS, str(self.home_dir), str(count), ",".join(COLLECTIONS)],
            timeout=900,
            env=self.env,
        )
        if not done.ok:
            raise RuntimeError(f"{self.label}: the in-process probe failed: {done.stderr[-2000:]}")
        found: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
        return found

    def stop(self) -> None:
        self.session.close()
        if self.proc is not None:
            self.proc.stop()


def stats(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": common.median(values) * 1000,
        "p95_ms": common.percentile(values, 0.95) * 1000,
        "min_ms": min(values) * 1000 if values else float("nan"),
        "n": len(values),
    }


def add(results: dict[str, dict[str, float]], name: str, times: list[float]) -> None:
    """Keep a figure, and print it at once: plain Radicale's part takes minutes at 10,000 events."""
    row = results[name] = stats(times)
    print(
        f"[freebusy] {name}: median {row['median_ms']:.2f} ms, p95 {row['p95_ms']:.2f}, min {row['min_ms']:.2f}",
        flush=True,
    )


def plain_radicale(store: Path, username: str, count: int) -> dict[str, list[float]]:
    """Plain Radicale's free-busy REPORT on the mirror (it has no `busy/`: only calmirror fills one)."""
    times: list[float] = []
    with PlainRadicale(store, name="freebusy-peer") as plain, requests.Session() as http:
        for n in range(count + 1):  # the first builds Radicale's item cache: untimed
            t0 = time.perf_counter()
            answer = http.request(
                "REPORT",
                f"{plain.url}{username}/{MIRROR}/",
                data=report_body(n),
                auth=(username, "x"),
                headers={"Depth": "1", "Content-Type": "application/xml"},
                timeout=600,
            )
            if answer.status_code != 200:
                raise RuntimeError(f"plain Radicale free-busy answered {answer.status_code}: {answer.text[:200]}")
            if n:
                times.append(time.perf_counter() - t0)
    return {f"plain Radicale {MIRROR}": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300, help="REPORTs per collection and daemon")
    parser.add_argument("--base-pythonpath", help="the daemon/ folder of another revision, asked in turn")
    parser.add_argument("--plain-requests", type=int, default=5)
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    events = common.generate_events(args.events)
    results: dict[str, dict[str, float]] = {}
    with common.icloud_with(events) as icloud:
        sc = Scenario(icloud.emu, icloud.root, events, icloud.work_id, Report(), f"{args.events:,} events")
        setup_calmirror(sc)
        assert sc.home is not None
        calmirror_pass(sc)
        pristine = sc.root / "pristine-home"
        shutil.copytree(sc.home.data_dir, pristine, symlinks=True)
        sides = [Side("this", sc.root / "home-this", None)]
        if args.base_pythonpath:
            sides.insert(0, Side("base", sc.root / "home-base", args.base_pythonpath))
        for s in sides:
            shutil.copytree(pristine, s.home_dir, symlinks=True)
        load_before = os.getloadavg()
        print(f"[freebusy] {args.events:,} events; load {load_before}", flush=True)
        try:
            for s in sides:
                s.start()
            time.sleep(SETTLE_S)
            for collection in COLLECTIONS:
                for n in range(WARM_REQUESTS):
                    for s in sides:
                        s.report(collection, n)
                for n in range(args.requests):
                    for s in sides:
                        s.times[collection].append(s.report(collection, n))
        finally:
            for s in sides:
                s.stop()
        load_http = os.getloadavg()
        for s in sides:
            for collection in COLLECTIONS:
                add(results, f"{s.label}: HTTP REPORT {collection}", s.times[collection])
        for s in sides:
            for name, times in s.in_process(args.requests).items():
                add(results, f"{s.label}: in process, {name}", times)
        if not args.no_plain:
            username = credentials.local_account(sc.home).username
            store = Home(config_file=pristine / "config.toml", data_dir=pristine).store_dir
            for name, times in plain_radicale(store, username, args.plain_requests).items():
                add(results, name, times)
    load_after = os.getloadavg()
    print(f"machine: {common.machine_summary()}; revision {common.revision()}")
    print(f"30-day free-busy REPORT at {args.events:,} events; load {load_before} / {load_http} / {load_after}")
    print("| figure | median ms | p95 ms | min ms | n |")
    print("|---|---:|---:|---:|---:|")
    for name, row in results.items():
        print(f"| {name} | {row['median_ms']:.2f} | {row['p95_ms']:.2f} | {row['min_ms']:.2f} | {row['n']:.0f} |")
    if args.json:
        print(json.dumps({"events": args.events, "load": [load_before, load_http, load_after], "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
