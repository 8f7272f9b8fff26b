"""Benchmark: the week page over 10,000 mirrored events, as a browser asks for it.

    python bench/bench_week_page.py            # goal: median under 100 ms
    python bench/bench_week_page.py --events 2000 --runs 10

The corpus (`calmirror.testing.corpus`, iCloud-shaped, 15 % weekly series) is loaded into the
emulator's Work calendar and mirrored by the real engine; then the real daemon serves the page
and we time whole HTTP requests for `/.calmirror/week`, each for another week (shifted a day
per run, so nothing is answered from a cache of the previous answer). The first request after
start parses every calendar; the daemon warms that at start, and we wait for it first, then for
the `busy/` calendar's first fill (a few seconds of work at this size that would otherwise be
timed as the page's). Besides whole requests we time the page's own work: the same WSGI app
called in this process with no socket in between (`render_*`). The load average is printed
before and after: on a shared machine it says how far to trust the figures.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import threading
import time
from typing import Any

import requests
from common import ANCHOR, generate_events, icloud_with, median, mirror_once, percentile

from calmirror import config, credentials
from calmirror.daemon import Daemon
from calmirror.testing.homes import connected_home, engine_for

GOAL_MS = 100.0


def render_ms(daemon: Daemon, auth: tuple[str, str], day: dt.date) -> tuple[float, int]:
    """One week page from the daemon's own WSGI app, in this process: (ms, blocks shown)."""
    app = daemon.server.web
    assert app is not None
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/.calmirror/week",
        "QUERY_STRING": f"start={day.isoformat()}",
        "HTTP_AUTHORIZATION": f"Basic {basic}",
        "wsgi.input": io.BytesIO(),
    }
    status: list[str] = []
    started = time.perf_counter()
    body = b"".join(app(environ, lambda code, headers: status.append(code)))
    elapsed = (time.perf_counter() - started) * 1000
    assert status[0].startswith("200"), status
    return elapsed, body.count(b'class="block')


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = load()
    with icloud_with(generate_events(args.events)) as icloud:
        home = connected_home(icloud.root / "home", icloud.emu)
        engine = engine_for(home)
        started = time.perf_counter()
        try:
            mirror_once(engine)
        finally:
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
            deadline = time.monotonic() + 300
            while daemon.busy_calendar.refreshed < 1 and time.monotonic() < deadline:
                time.sleep(0.1)  # the first fill of busy/ at start: not the page's work
            times, blocks = [], []
            for run in range(args.runs):
                day = ANCHOR.date() + dt.timedelta(days=1 + run)
                started = time.perf_counter()
                answer = requests.get(url, params={"start": day.isoformat()}, auth=auth, timeout=60)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
                blocks.append(answer.text.count('class="block'))
            renders = []
            for run in range(args.runs):
                elapsed, shown = render_ms(daemon, auth, ANCHOR.date() + dt.timedelta(days=1 + run))
                assert shown == blocks[run]  # the same page as over HTTP
                renders.append(elapsed)
        finally:
            daemon.stop()
            thread.join(30)
    result = {
        "events": args.events,
        "mirror_s": round(mirror_s, 1),
        "first_request_ms": round(first_ms, 1),
        "median_ms": round(median(times), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "render_median_ms": round(median(renders), 1),
        "render_p95_ms": round(percentile(renders, 95), 1),
        "blocks_per_week": round(sum(blocks) / len(blocks)),
        "goal_ms": GOAL_MS,
        "load_before": load_before,
        "load_after": load(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"week page over {args.events} mirrored events ({result['blocks_per_week']} blocks a week): "
        f"median {result['median_ms']} ms, p95 {result['p95_ms']} ms over {args.runs} requests "
        f"(first request {result['first_request_ms']} ms; goal < {GOAL_MS:.0f} ms); "
        f"the page's own work in-process: median {result['render_median_ms']} ms, p95 {result['render_p95_ms']} ms; "
        f"mirroring took {result['mirror_s']} s; load average {load_before} before, {result['load_after']} after"
    )


if __name__ == "__main__":
    main()
