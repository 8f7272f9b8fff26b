"""Benchmark: one-week calendar-queries on a mirror, calmirror's index vs plain Radicale.

    python bench/bench_range_query.py                 # 10,000 events; goal: ≥ 10× faster
    python bench/bench_range_query.py --events 2000 --rounds 3

The shared corpus (`calmirror.testing.corpus`: 15 % weekly series, half of them open-ended)
is loaded into the emulator's Work calendar and mirrored by the real engine. Two servers
then answer over the same store folder, each in its own child process:

- calmirror's `LocalServer` with the time-range index (`ranges.db` in the run's folder);
- Radicale's own `serve()` with calmirror's storage settings (the same item-cache layout,
  so both serve the same cached texts) and its unmodified storage.

Queries: `VCALENDAR > VEVENT > time-range` with calendar-data and getetag, one week each,
for `--weeks` consecutive weeks from 30 November 2026 (the corpus' middle). The very first
query of each server is timed on its own ("cold": the index is empty, so calmirror reads
every item once and records the occurrences of the series it needs). Then every week is
asked once of each, untimed (calmirror records the series of the weeks it has not seen),
and the timed rounds alternate the two servers request by request, so load from the rest
of the machine falls on both alike. Last, a second calmirror server on a new index first
warms it as the daemon's range keeper does after a mirror pass (timed), and its first query
is timed. Every answer of calmirror must equal Radicale's (same
responses in the same order, same ETags, same calendar-data), or the run fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import common
import requests
from common import ANCHOR, generate_events, icloud_with, median

from calmirror import credentials
from calmirror.testing.homes import connected_home, engine_for

GOAL_RATIO = 10.0
_SERVING = re.compile(r"serving (http://\S+/)")
_PASSWORD_VARIABLE = "CALMIRROR_BENCH_LOCAL_PASSWORD"


def week_query(start: dt.datetime) -> bytes:
    end = start + dt.timedelta(weeks=1)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:prop><d:getetag/><c:calendar-data/></d:prop>
<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">
<c:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/></c:comp-filter></c:comp-filter></c:filter>
</c:calendar-query>""".encode()


def answer_of(body: bytes) -> list[tuple[str, str, str]]:
    found = []
    for response in ET.fromstring(body).findall("{DAV:}response"):
        found.append(
            (
                response.findtext("{DAV:}href") or "",
                response.findtext(".//{DAV:}getetag") or "",
                response.findtext(".//{urn:ietf:params:xml:ns:caldav}calendar-data") or "",
            )
        )
    return found


# --- the two servers, each in a child process ---------------------------------------------


def child_calmirror(store: str, username: str, index_path: str, warm_first: str) -> int:
    """calmirror's server; with `warm_first` "warm" it first warms the mirror's index as the
    daemon's range keeper does after a mirror pass, and prints how long that took.

    The password comes through the environment: on a command line it is visible to every
    process, and a random one that starts with "-" reads as an option."""
    password = os.environ[_PASSWORD_VARIABLE]
    from calmirror.local.server import LocalServer
    from calmirror.state.ranges import RangeIndex

    index = RangeIndex(Path(index_path))
    server = LocalServer(Path(store), port=0, username=username, password=password, range_store=index)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    url = server.start()
    if warm_first == "warm":
        mirror = next(
            p.name for p in (Path(store) / "collection-root" / username).iterdir() if p.name.startswith("icloud-")
        )
        started = time.perf_counter()
        recorded = server.warm_ranges(mirror, lambda: False)
        print(f"warmed in {time.perf_counter() - started:.2f} s, {recorded} series recorded", flush=True)
    print(f"serving {url}", flush=True)
    stop.wait()
    server.stop()
    index.close()
    return 0


def child_radicale(store: str) -> int:
    import socket

    import radicale.server

    from calmirror.local.radicale_config import build_configuration

    port = common.free_port()
    configuration = build_configuration(Path(store), port=port, auth_type="none")
    shutdown, shutdown_other = socket.socketpair()
    signal.signal(signal.SIGTERM, lambda *_: shutdown.close())
    thread = threading.Thread(target=radicale.server.serve, args=(configuration, shutdown_other), daemon=True)
    thread.start()
    common.wait_until_answering(f"http://127.0.0.1:{port}/", timeout=30)
    print(f"serving http://127.0.0.1:{port}/", flush=True)
    thread.join()
    return 0


def start(args: list[str], log_file: Path) -> tuple[common.BackgroundProcess, str]:
    return common.start_server(
        [sys.executable, str(Path(__file__).resolve()), *args], log_file, _SERVING, timeout=120, failure=" ".join(args)
    )


# --- the run ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child-calmirror", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-radicale", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_calmirror:
        return child_calmirror(*args.child_calmirror)
    if args.child_radicale:
        return child_radicale(*args.child_radicale)

    print(common.machine_summary(), flush=True)
    with icloud_with(generate_events(args.events)) as icloud:
        home = connected_home(icloud.root / "home", icloud.emu)
        engine = engine_for(home)
        started = time.perf_counter()
        try:
            common.mirror_once(engine)
        finally:
            engine.state.close()
        print(f"mirrored {args.events:,} events in {time.perf_counter() - started:.1f} s", flush=True)
        acct = credentials.local_account(home)
        mirror = next(
            p.name
            for p in (home.store_dir / "collection-root" / acct.username).iterdir()
            if p.name.startswith("icloud-")
        )
        store = str(home.store_dir)
        os.environ[_PASSWORD_VARIABLE] = acct.password  # inherited by the server children
        calmirror, calmirror_url = start(
            ["--child-calmirror", store, acct.username, str(icloud.root / "ranges.db"), "cold"],
            icloud.root / "calmirror.log",
        )
        plain, plain_url = start(["--child-radicale", store], icloud.root / "radicale.log")
        load_before = os.getloadavg()
        try:
            with requests.Session() as http:
                http.auth = (acct.username, acct.password)
                targets = {
                    "calmirror": f"{calmirror_url}{acct.username}/{mirror}/",
                    "radicale": f"{plain_url}{acct.username}/{mirror}/",
                }

                def ask(name: str, body: bytes) -> tuple[float, list[tuple[str, str, str]]]:
                    t0 = time.perf_counter()
                    answer = http.request(
                        "REPORT",
                        targets[name],
                        data=body,
                        timeout=600,
                        headers={"Depth": "1", "Content-Type": "application/xml"},
                    )
                    took = time.perf_counter() - t0
                    if answer.status_code != 207:
                        raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:300]}")
                    return took, answer_of(answer.content)

                weeks = [ANCHOR - dt.timedelta(days=1) + dt.timedelta(weeks=k) for k in range(args.weeks)]
                bodies = [week_query(week) for week in weeks]
                cold = {name: ask(name, bodies[0]) for name in ("calmirror", "radicale")}
                if cold["calmirror"][1] != cold["radicale"][1]:
                    raise RuntimeError("the first answers differ")
                expected = [ask("radicale", body)[1] for body in bodies]  # also warms Radicale's side
                for body, answer in zip(bodies, expected, strict=True):
                    if ask("calmirror", body)[1] != answer:
                        raise RuntimeError("an answer differs")
                times: dict[str, list[float]] = {"calmirror": [], "radicale": []}
                for round_ in range(args.rounds):
                    for body, answer in zip(bodies, expected, strict=True):
                        order = ["calmirror", "radicale"] if round_ % 2 == 0 else ["radicale", "calmirror"]
                        for name in order:
                            took, got = ask(name, body)
                            if got != answer:
                                raise RuntimeError(f"{name}: an answer differs in round {round_}")
                            times[name].append(took)
                warmed_log = icloud.root / "warmed.log"
                warmed, warmed_url = start(
                    ["--child-calmirror", store, acct.username, str(icloud.root / "warm.db"), "warm"],
                    warmed_log,
                )
                try:
                    targets["warmed"] = f"{warmed_url}{acct.username}/{mirror}/"
                    first_warmed = ask("warmed", bodies[0])
                    if first_warmed[1] != expected[0]:
                        raise RuntimeError("the warmed server's first answer differs")
                    warming = re.search(r"warmed in .*", warmed_log.read_text())
                finally:
                    warmed.stop()
        finally:
            load_after = os.getloadavg()
            calmirror.stop()
            plain.stop()
    mine, peer = median(times["calmirror"]), median(times["radicale"])
    sizes = sorted({len(answer) for answer in expected})
    print()
    print(f"events {args.events:,}; weeks {args.weeks}; rounds {args.rounds}; responses per week {sizes}")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min)")
    print(f"cold first query: calmirror {cold['calmirror'][0]:.2f} s, Radicale {cold['radicale'][0]:.2f} s")
    print(
        f"first query after the index was warmed ({warming.group(0) if warming else '?'}): "
        f"{first_warmed[0] * 1000:.0f} ms"
    )
    print(
        f"one-week calendar-query, median of {len(times['calmirror'])}: calmirror {mine * 1000:.0f} ms, "
        f"Radicale {peer * 1000:.0f} ms, ratio {peer / mine:.1f}× (goal ≥ {GOAL_RATIO:.0f}×); identical answers"
    )
    print(
        f"calmirror min/max {min(times['calmirror']) * 1000:.0f}/{max(times['calmirror']) * 1000:.0f} ms; "
        f"Radicale min/max {min(times['radicale']) * 1000:.0f}/{max(times['radicale']) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
