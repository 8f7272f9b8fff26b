"""Benchmark 4: a 30-day availability query, calmirror's engine vs Radicale's free-busy REPORT.

    python bench/bench_availability_peer.py [--events N]   # alone
    python bench/run_all.py [--large]                      # with the rest (N = 10,000 with --large)

The corpus (20 % recurring) is mirrored by calmirror from the emulator into a fresh home, so
the engine reads exactly what the daemon would: `BusySources(store, state, settings).busy()`
over `appointments/`, `blocked/` and the mirror. It caches parsed calendars per item (and
`availability` memoises compiled calendars), so we report both:

- cold: a new `BusySources` after `availability.clear_cache()`: reads and parses every item
  from the store, then answers (what the first query after a daemon start costs);
- warm: the same object asked about 30-day windows shifted by one day each time (so no
  answer can come from a result cache): what every later query costs.

Peer: an unmodified Radicale (`python -m radicale`, default settings) pointed at the same
store folder, asked a `free-busy-query` REPORT on the mirror collection for the same windows
(its first answer, which fills its item cache, is reported as cold). The answers are compared
after merging: calmirror's busy intervals vs Radicale's BUSY and BUSY-TENTATIVE periods.

The corpus comes from `bench_availability.generate` (the engine-only benchmark) when that
module is there, else from `common.generate_events` with 20 % weekly series.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time

import common
import requests
from common import PlainRadicale, Report, Row

from calmirror import credentials
from calmirror.availability import engine as availability
from calmirror.availability.sources import BusySources
from calmirror.testing.homes import connected_home, engine_for

GOAL_MS = 50.0
DAYS = 30
Interval = tuple[dt.datetime, dt.datetime]


def corpus(total: int, seed: int = 5545) -> tuple[list[tuple[str, str]], str]:
    """(name, text) resources with 20 % recurring, and where they came from."""
    try:
        import bench_availability
    except ImportError:
        return common.generate_events(total, seed, weekly_share=0.20), "common.generate_events (20 % weekly)"
    made = bench_availability.generate(total, 0.20, seed, False)
    texts = [text for group in made.texts.values() for text in group]
    out = []
    for text in texts:
        uid = re.search(r"\r\nUID:([^\r\n]+)", text)
        assert uid is not None
        out.append((f"{uid.group(1)}.ics", text))
    return out, f"bench_availability.generate (seed {seed}, {made.recurring} recurring)"


def windows(count: int) -> list[Interval]:
    return [(common.ANCHOR + dt.timedelta(days=i), common.ANCHOR + dt.timedelta(days=i + DAYS)) for i in range(count)]


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_period(text: str) -> Interval:
    start_text, end_text = text.split("/")
    start = dt.datetime.strptime(start_text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    if end_text.startswith("P"):
        raise ValueError(f"duration periods not handled: {text}")
    return start, dt.datetime.strptime(end_text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def busy_from_vfreebusy(text: str) -> list[Interval]:
    """BUSY and BUSY-TENTATIVE periods of a VFREEBUSY answer, merged like calmirror merges."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    periods: list[Interval] = []
    for line in unfolded.splitlines():
        if not line.startswith("FREEBUSY"):
            continue
        params, _, value = line.partition(":")
        fbtype = re.search(r"FBTYPE=([A-Z-]+)", params)
        if fbtype and fbtype.group(1) not in ("BUSY", "BUSY-TENTATIVE"):
            continue
        periods += [_parse_period(p) for p in value.split(",") if p]
    return availability.merge(periods)


def _clear_engine_cache() -> None:
    clear = getattr(availability, "clear_cache", None)
    if clear is not None:
        clear()


def run(report: Report, size: int, label: str, *, warm_runs: int = 41, peer_runs: int = 11) -> None:
    bench = f"availability, 30 days ({label})"
    events, origin = corpus(size)
    print(f"\n[availability] {label}: mirroring {len(events):,} events ({origin})", flush=True)
    with common.icloud_with(events) as icloud:
        home = connected_home(icloud.root / "home", icloud.emu, conflicts=("Work",))
        engine = engine_for(home)
        mirrored = common.mirror_once(engine)
        if any(r.error for r in mirrored):
            raise RuntimeError(f"mirror failed: {[r.error for r in mirrored]}")
        spans = windows(max(warm_runs, peer_runs) + 3)

        print(f"[availability] {label}: calmirror engine, cold x3 then {warm_runs} warm windows", flush=True)
        cold: list[float] = []
        sources = None
        for i in range(3):
            _clear_engine_cache()
            sources = BusySources(engine.store, engine.state, engine.settings)
            t0 = time.perf_counter()
            sources.busy(*spans[i])
            cold.append(time.perf_counter() - t0)
        assert sources is not None
        warm: list[float] = []
        answers: dict[int, list[Interval]] = {}
        for i in range(warm_runs):
            t0 = time.perf_counter()
            answers[i] = sources.busy(*spans[i])
            warm.append(time.perf_counter() - t0)

        print(f"[availability] {label}: Radicale free-busy REPORT, {peer_runs} windows", flush=True)
        acct = credentials.local_account(home)
        slug = engine.state.mirrors()[0].slug
        engine.state.close()
        peer_cold = float("nan")
        peer_warm: list[float] = []
        disagree: list[str] = []
        with PlainRadicale(home.store_dir, name="freebusy-peer") as plain, requests.Session() as http:
            http.auth = (acct.username, "any")
            url = f"{plain.url}{acct.username}/icloud-{slug}/"
            for i in range(peer_runs + 1):
                start, end = spans[max(0, i - 1)]
                body = (
                    f'<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:'
                    f'ns:caldav"><C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
                    "</C:free-busy-query>"
                ).encode()
                t0 = time.perf_counter()
                answer = http.request(
                    "REPORT", url, data=body, headers={"Depth": "1", "Content-Type": "application/xml"}, timeout=300
                )
                took = time.perf_counter() - t0
                if answer.status_code != 200:
                    raise RuntimeError(f"Radicale free-busy answered {answer.status_code}: {answer.text[:300]}")
                if i == 0:
                    peer_cold = took  # the first request fills Radicale's item cache
                    continue
                peer_warm.append(took)
                theirs = busy_from_vfreebusy(answer.text)
                ours = answers[i - 1]
                if theirs != ours:
                    only_ours, only_theirs = set(ours) - set(theirs), set(theirs) - set(ours)
                    disagree.append(
                        f"window {i - 1}: {len(only_ours)} interval(s) only calmirror, {len(only_theirs)} only Radicale"
                    )
    cold_ms, warm_ms = common.median(cold) * 1000, common.median(warm) * 1000
    peer_warm_ms = common.median(peer_warm) * 1000
    met = "met" if warm_ms < GOAL_MS else "NOT met"
    report.add(
        Row(
            bench,
            "warm query, median",
            warm_ms,
            "Radicale free-busy REPORT",
            peer_warm_ms,
            "ms",
            goal=f"< {GOAL_MS:.0f} ms ({met})",
            note=f"p95 {common.percentile(warm, 0.95) * 1000:.1f} ms over {warm_runs} windows; Radicale "
            f"{peer_runs} windows, over HTTP",
        )
    )
    report.add(
        Row(
            bench,
            "cold query (first after start), median of 3",
            cold_ms,
            "Radicale free-busy REPORT",
            peer_cold * 1000,
            "ms",
            note="calmirror: read + parse every item from the store, then answer; Radicale: its first request",
        )
    )
    report.add(
        Row(
            bench,
            "answers agree with Radicale",
            None,
            calmirror_text="yes" if not disagree else f"NO in {len(disagree)} of {len(peer_warm)} windows",
            note="; ".join(disagree[:3]),
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000)
    args = parser.parse_args()
    report = Report()
    run(report, args.events, f"{args.events:,} events")
    print()
    print(common.text_table(report.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
