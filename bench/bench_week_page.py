"""Benchmark: the week page over 10,000 mirrored events, as a browser asks for it.

    python bench/bench_week_page.py            # goal: median under 100 ms
    python bench/bench_week_page.py --events 2000 --runs 10

The corpus (`calmirror.testing.corpus`, iCloud-shaped, 15 % weekly series) is loaded into the
emulator's Work calendar and mirrored by the real engine; then the real daemon serves the page
and we time whole HTTP requests for `/.calmirror/week`, each for another week (shifted a day
per run, so nothing is answered from a cache of the previous answer). The first request after
start parses every calendar; the daemon warms that at start, and we wait for it first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
import time

import requests
from common import ANCHOR, generate_events, icloud_with, median, percentile

from calmirror import config, credentials
from calmirror.daemon import Daemon
from calmirror.testing.homes import connected_home, engine_for

GOAL_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with icloud_with(generate_events(args.events)) as icloud:
        home = connected_home(icloud.root / "home", icloud.emu)
        engine = engine_for(home)
        client = engine.client()
        started = time.perf_counter()
        try:
            engine.mirror_pass(client)
        finally:
            client.close()
            engine.state.close()
        mirror_s = time.perf_counter() - started
        ready = threading.Event()
        daemon = Daemon(home, config.load(home.config_file), on_ready=lambda url: ready.set())
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            assert ready.wait(120), "daemon did not start"
            acct = credentials.local_account(home)
            auth = (acct.username, acct.password)
            url = f"{daemon.url}.calmirror/week"
            started = time.perf_counter()
            first = requests.get(url, params={"start": ANCHOR.date().isoformat()}, auth=auth, timeout=300)
            first_ms = (time.perf_counter() - started) * 1000
            assert first.status_code == 200, first.status_code
            times, blocks = [], []
            for run in range(args.runs):
                day = ANCHOR.date() + dt.timedelta(days=1 + run)
                started = time.perf_counter()
                answer = requests.get(url, params={"start": day.isoformat()}, auth=auth, timeout=60)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
                blocks.append(answer.text.count('class="block'))
        finally:
            daemon.stop()
            thread.join(30)
    result = {
        "events": args.events,
        "mirror_s": round(mirror_s, 1),
        "first_request_ms": round(first_ms, 1),
        "median_ms": round(median(times), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "blocks_per_week": round(sum(blocks) / len(blocks)),
        "goal_ms": GOAL_MS,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"week page over {args.events} mirrored events ({result['blocks_per_week']} blocks a week): "
        f"median {result['median_ms']} ms, p95 {result['p95_ms']} ms over {args.runs} requests "
        f"(first request {result['first_request_ms']} ms; goal < {GOAL_MS:.0f} ms); "
        f"mirroring took {result['mirror_s']} s"
    )


if __name__ == "__main__":
    main()
