"""A 30-day free-busy REPORT through the running daemon, against the same answer in process.

    python bench/bench_freebusy.py [--events 10000] [--requests 300] [--base-pythonpath DIR]
        [--plain-requests 3] [--no-plain] [--json]

Issue 15's goal is "availability 30 days, daemon: < 5 ms", and the answer itself costs a
fraction of a millisecond in process, so this bench splits a REPORT's time into its parts.
The home is mirrored once (the generated corpus in the Work calendar, as in `bench_load.py`);
then, on copies of it:

- HTTP: the real daemon (`calmirror run`, a child) is sent `--requests` sequential 30-day
  free-busy REPORTs on `busy/` and on the mirror, windows a day apart, from a
  `requests.Session` and then from one bare `http.client` connection (both reuse their
  connection when the server keeps it open; the second shows what is left without a client
  library's own ~0.5 ms per request). With `--base-pythonpath` a daemon of that code runs
  beside it on its own copy, and the two are asked in turn, request by request, so both see
  the same load. The daemon's own CPU time per REPORT (from /proc, both clients together)
  does not depend on the box's load the way times do.
- in process: the daemon's own free-busy callable (`make_freebusy` over `BusySources`, as
  the daemon wires it) and the whole WSGI app of the local server (Host check, middleware,
  callable; no socket), called directly in a child of that side's code.
- peer: plain Radicale's free-busy REPORT on a copy of the same store (`--plain-requests`
  of them: it parses every event each time).

Printed per figure: median, p95, min (ms), the box's load average before and after.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import common
import requests
from bench_load import mirrored_home
from common import PlainRadicale

from calmirror import credentials
from calmirror.home import Home

_SERVING = re.compile(r"calmirror serving (http://\S+/)")
MIRROR = "icloud-work"
COLLECTIONS = ("busy", MIRROR)
FIRST_DAY = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SETTLE_S = 5.0  # after the daemon serves: its busy index warms and `busy/` fills
WARM_REQUESTS = 20
CLIENTS = ("requests", "bare")  # a requests.Session; one http.client connection (no client library's cost)

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
    """One daemon (this checkout's, or another revision's) on its own copy of the home, and
    two clients of it: a `requests.Session` and a bare `http.client` connection."""

    def __init__(self, label: str, home_dir: Path, pythonpath: str | None) -> None:
        self.label, self.home_dir = label, home_dir
        self.env = {**os.environ, "PYTHONPATH": pythonpath or str(common.REPO / "daemon")}
        self.proc: common.BackgroundProcess | None = None
        self.session = requests.Session()
        self.bare: http.client.HTTPConnection | None = None
        self.url = ""
        self.auth = ("", "")
        self.times: dict[str, list[float]] = {}
        self.cpu_s = 0.0
        self.requests = 0

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
        host, port = self.url.rstrip("/").removeprefix("http://").rsplit(":", 1)
        self.bare = http.client.HTTPConnection(host, int(port), timeout=120)

    def cpu(self) -> float:
        """The daemon's user + system CPU so far (s)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def report(self, collection: str, n: int, client: str) -> float:
        """One REPORT, timed from sending to the whole answer; `client` is "requests" or "bare"."""
        path = f"/{self.auth[0]}/{collection}/"
        headers = {"Depth": "1", "Content-Type": "application/xml"}
        t0 = time.perf_counter()
        if client == "bare":
            assert self.bare is not None
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            self.bare.request("REPORT", path, report_body(n), {**headers, "Authorization": f"Basic {token}"})
            answer = self.bare.getresponse()
            status, text = answer.status, answer.read().decode()
        else:
            reply = self.session.request(
                "REPORT", self.url + path.lstrip("/"), data=report_body(n), auth=self.auth, headers=headers, timeout=120
            )
            status, text = reply.status_code, reply.text
        took = time.perf_counter() - t0
        if status != 200 or "VFREEBUSY" not in text:
            raise RuntimeError(f"{self.label}: free-busy answered {status}: {text[:200]}")
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
        if self.bare is not None:
            self.bare.close()
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
    parser.add_argument("--requests", type=int, default=300, help="REPORTs per collection, client and daemon")
    parser.add_argument("--base-pythonpath", help="the daemon/ folder of another revision, asked in turn")
    parser.add_argument("--plain-requests", type=int, default=3)
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with mirrored_home(args.events, "freebusy") as (sc, pristine):
        assert sc.home is not None
        sides = [Side("this", sc.root / "home-this", None)]
        if args.base_pythonpath:
            sides.insert(0, Side("base", sc.root / "home-base", args.base_pythonpath))
        for s in sides:
            shutil.copytree(pristine, s.home_dir, symlinks=True)
        load_before = os.getloadavg()
        try:
            for s in sides:
                s.start()
            time.sleep(SETTLE_S)
            for collection in COLLECTIONS:
                for n in range(WARM_REQUESTS):
                    for s in sides:
                        s.report(collection, n, "requests")
            for s in sides:
                s.cpu_s = s.cpu()
            for collection in COLLECTIONS:
                for client in CLIENTS:
                    for n in range(args.requests):
                        for s in sides:  # in turn, request by request: both see the same load
                            s.times.setdefault(f"{collection}, {client}", []).append(s.report(collection, n, client))
                            s.requests += 1
            for s in sides:
                s.cpu_s = s.cpu() - s.cpu_s
        finally:
            for s in sides:
                s.stop()
        load_http = os.getloadavg()
        for s in sides:
            for name, times in s.times.items():
                add(results, f"{s.label}: HTTP REPORT {name}", times)
            cpu_ms = s.cpu_s / max(1, s.requests) * 1000
            results[f"{s.label}: daemon CPU per REPORT"] = {"median_ms": cpu_ms, "n": s.requests}
            print(f"[freebusy] {s.label}: daemon CPU {cpu_ms:.2f} ms per REPORT", flush=True)
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
        cells = [f"{row[key]:.2f}" if key in row else "" for key in ("median_ms", "p95_ms", "min_ms")]
        print(f"| {name} | {' | '.join(cells)} | {row['n']:.0f} |")
    if args.json:
        print(json.dumps({"events": args.events, "load": [load_before, load_http, load_after], "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
