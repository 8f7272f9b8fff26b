"""busy/ refresh cost: what the daemon's keeper spends after a change, on a mirrored corpus.

Mirrors `--events N` events (the shared corpus, 20 % weekly series), warms the sources as the
daemon does at start, then times `BusyCalendar.refresh()`: the first fill of an empty `busy/`,
an idle refresh (nothing changed), and a refresh after one local write into `blocked/`. No
peer serves such a calendar; the figures stand alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import common
import requests
from common import Report, Row

from calmirror import credentials
from calmirror.availability.busy_calendar import BusyCalendar
from calmirror.availability.sources import BusySources
from calmirror.local.layout import BLOCKED
from calmirror.local.server import LocalServer
from calmirror.testing.homes import connected_home, engine_for
from calmirror.testing.ical import event

NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)  # the corpus is spread around December 2026


def run(report: Report, size: int) -> None:
    bench = f"busy/ refresh ({size:,} events)"
    events = common.generate_events(size, 5545, weekly_share=0.20)
    with common.icloud_with(events) as icloud:
        home = connected_home(icloud.root / "home", icloud.emu, conflicts=("Work",))
        engine = engine_for(home)
        common.mirror_once(engine)
        engine.store.ensure_base()
        sources = BusySources(engine.store, engine.state, engine.settings)
        sources.warm()
        keeper = BusyCalendar(sources, engine.store, clock=lambda: NOW)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        first = keeper.refresh()
        timings["first fill of an empty busy/"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idle = keeper.refresh()
        timings["idle refresh (nothing changed)"] = time.perf_counter() - t0
        acct = credentials.local_account(home)
        with LocalServer(home.store_dir, port=0, username=acct.username, password=acct.password) as server:
            put = requests.put(
                f"{server.url}{acct.username}/{BLOCKED}/b.ics",
                data=event("bench-b", "x", start="20261209T031500Z", end="20261209T031600Z").encode(),
                auth=(acct.username, acct.password),
                headers={"Content-Type": "text/calendar; charset=utf-8"},
                timeout=30,
            )
            put.raise_for_status()
        t0 = time.perf_counter()
        one = keeper.refresh()
        timings["refresh after one local write"] = time.perf_counter() - t0
        engine.state.close()
    notes = {
        "first fill of an empty busy/": f"{len(first.upserts):,} blocks written",
        "idle refresh (nothing changed)": f"{len(idle.upserts) + len(idle.deletes)} items written",
        "refresh after one local write": f"{len(one.upserts)} added, {len(one.deletes)} removed",
    }
    for metric, seconds in timings.items():
        report.add(Row(bench, metric, seconds * 1000, unit="ms", note=notes[metric]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000)
    args = parser.parse_args()
    report = Report()
    run(report, args.events)
    print()
    print(common.text_table(report.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
