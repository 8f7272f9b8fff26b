"""Benchmark 5: local serving, calmirror's server vs a plain Radicale on the same store.

    python bench/bench_serving.py [--events N]   # alone
    python bench/run_all.py [--large]            # with the rest

calmirror puts middleware in front of Radicale (auth, read-only mirrors, body limits, XML
checks, the free-busy answer). It must not slow clients down, so both servers answer the
same requests over the same store folder (`<home>/store`, the mirror `icloud-work` of the
run's corpus): calmirror's `LocalServer` and an unmodified `python -m radicale` (default
settings, `auth type = none`), each in its own child process, so neither shares a GIL with
the client sending the requests (measured in-process, calmirror looked 30 % slower).

Requests, sent one after another over fresh connections (both servers speak HTTP/1.0):
a Depth-1 PROPFIND of the mirror (getetag, getcontenttype, resourcetype: what a client's
sync listing asks) and a one-week calendar-query with calendar-data (a week view). Each
server answers each once untimed first (both build their item caches), then timed rounds
alternate the two servers request by request; throughput is requests ÷ their summed time.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import common
import requests
from bench_mirror import setup_calmirror
from common import PlainRadicale, Report, Row
from mirror_passes import calmirror_pass
from mirror_scenario import Scenario

from calmirror import credentials
from calmirror.local.server import LocalServer

_SERVING = re.compile(r"serving (http://\S+/)")
PROPFIND = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontenttype/><d:resourcetype/></d:prop></d:propfind>"""


def week_query(start: str, end: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:prop><d:getetag/><c:calendar-data/></d:prop>
<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">
<c:time-range start="{start}" end="{end}"/></c:comp-filter></c:comp-filter></c:filter>
</c:calendar-query>""".encode()


WEEK = week_query("20261130T000000Z", "20261207T000000Z")


def responses_in(body: bytes) -> int:
    return len(ET.fromstring(body).findall("{DAV:}response"))


def interleaved(
    sends: dict[str, Callable[[], requests.Response]], *, min_n: int, max_n: int, budget_s: float
) -> dict[str, tuple[float, float, int]]:
    """Per server: (requests per second, median latency s, responses in the answer).

    Rounds alternate the servers request by request, so load from anything else on the
    machine (a shared 2-core box) falls on both alike instead of on whichever ran second.
    Throughput is requests ÷ the summed time of that server's requests.
    """
    counts: dict[str, int] = {}
    for name, send in sends.items():
        first = send()  # untimed: fills the server's item cache
        first.raise_for_status()
        counts[name] = responses_in(first.content)
    latencies: dict[str, list[float]] = {name: [] for name in sends}
    started = time.perf_counter()
    rounds = 0
    while rounds < max_n and (rounds < min_n or time.perf_counter() - started < budget_s * len(sends)):
        order = list(sends.items())
        if rounds % 2:
            order.reverse()  # neither server always goes first
        for name, send in order:
            t0 = time.perf_counter()
            answer = send()
            latencies[name].append(time.perf_counter() - t0)
            if answer.status_code != 207:
                raise RuntimeError(f"{name}: {answer.status_code}: {answer.text[:200]}")
        rounds += 1
    return {
        name: (len(values) / sum(values), common.median(values), counts[name]) for name, values in latencies.items()
    }


def child_serve(store: str, username: str) -> int:
    """Child process: calmirror's LocalServer on a free port until SIGTERM; prints its URL."""
    import signal
    import threading

    from calmirror.home import Home

    home = Home(config_file=Path(store).parent / "config.toml", data_dir=Path(store).parent)
    acct = credentials.local_account(home)
    server = LocalServer(Path(store), port=0, username=username, password=acct.password)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"serving {server.start()}", flush=True)
    stop.wait()
    server.stop()
    return 0


class CalmirrorServer:
    def __init__(self, store: Path, username: str, log_file: Path) -> None:
        self.proc, self.url = common.start_server(
            [sys.executable, str(Path(__file__).resolve()), "--child-serve", str(store), username],
            log_file,
            _SERVING,
            timeout=60,
            failure="calmirror's server did not start",
        )

    def stop(self) -> None:
        self.proc.stop()


def run(sc: Scenario, *, budget_s: float = 6.0) -> None:
    assert sc.home is not None
    acct = credentials.local_account(sc.home)
    collection = f"{acct.username}/icloud-work/"
    bench = f"local serving ({sc.label})"
    print(f"\n[serving] {sc.label}: PROPFIND depth 1 and a one-week calendar-query, calmirror vs Radicale", flush=True)
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    with PlainRadicale(sc.home.store_dir, name="serving-peer") as plain:
        server = CalmirrorServer(sc.home.store_dir, acct.username, sc.root / "serving.log")
        try:
            targets = {"calmirror": server.url + collection, "radicale": plain.url + collection}
            with requests.Session() as http:
                http.auth = (acct.username, acct.password)

                def sender(base: str, method: str, body: bytes) -> Callable[[], requests.Response]:
                    return lambda: http.request(
                        method, base, data=body, timeout=300, headers={"Depth": "1", "Content-Type": "application/xml"}
                    )

                for kind, method, body in (("propfind", "PROPFIND", PROPFIND), ("week", "REPORT", WEEK)):
                    measured = interleaved(
                        {name: sender(base, method, body) for name, base in targets.items()},
                        min_n=5,
                        max_n=300,
                        budget_s=budget_s,
                    )
                    for name, figures in measured.items():
                        results.setdefault(name, {})[kind] = figures
        finally:
            server.stop()
    for kind, label in (("propfind", "PROPFIND depth 1"), ("week", "one-week calendar-query")):
        mine, peer = results["calmirror"][kind], results["radicale"][kind]
        note = f"median {mine[1] * 1000:.1f} ms vs {peer[1] * 1000:.1f} ms; {mine[2]} vs {peer[2]} responses"
        if mine[2] != peer[2]:
            sc.report.finding(f"serving {label}: calmirror answered {mine[2]} responses, Radicale {peer[2]}")
        sc.report.add(
            Row(
                bench,
                f"{label}, requests/s",
                mine[0],
                "plain Radicale",
                peer[0],
                "req/s",
                better="higher",
                goal="not slower than Radicale",
                note=note,
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--child-serve", nargs=2, metavar=("STORE", "USER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_serve:
        return child_serve(*args.child_serve)
    report = Report()
    events = common.generate_events(args.events)
    with common.icloud_with(events) as icloud:
        sc = Scenario(icloud.emu, icloud.root, events, icloud.work_id, report, f"{args.events:,} events")
        setup_calmirror(sc)
        calmirror_pass(sc)
        run(sc)
    print()
    print(common.text_table(report.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
