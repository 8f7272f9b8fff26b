"""Benchmark: a 30-day availability query over 10,000 mirrored events (20 % recurring).

    python bench/bench_availability.py               # the issue's scenario, goal: median < 50 ms
    python bench/bench_availability.py --all-active  # worst case: every series runs through the window
    python bench/bench_availability.py --json

The corpus is generated, deterministic (--seed) and shaped like iCloud data: one VCALENDAR
per resource with its VTIMEZONE, events spread over two years back and one year ahead,
a mix of zones, floating and all-day events, and recurring series with COUNT, UNTIL or no
end, EXDATEs and moved instances. It is parsed once; then each engine answers the same
sequence of 30-day windows (shifted by a day each run, so nothing can be answered from a
result cache) and we print median and p95 per engine.

Engines are plain callables `window -> list of (start, end)`. `engines()` returns them;
a peer (the Radicale free-busy REPORT over the same items) is added there as another
entry and gets its own column plus a ratio to calmirror.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from calmirror.availability import engine as av
from calmirror.testing import ical  # light: calmirror.testing.homes would swell the RSS

UTC = dt.UTC
GOAL_MS = 50.0
QUERY_START = dt.datetime(2026, 12, 1, tzinfo=UTC)
Window = tuple[dt.datetime, dt.datetime]
Engine = Callable[[Window], list[tuple[dt.datetime, dt.datetime]]]


@dataclass(frozen=True)
class Corpus:
    texts: dict[str, list[str]]  # calendar name -> one .ics text per resource
    recurring: int
    total: int


def _event(rng: random.Random, n: int, recurring: bool, all_active: bool) -> str:
    """One resource: a master VEVENT (and maybe a moved instance) in an iCloud-like VCALENDAR."""
    zone = rng.choices(["Europe/Berlin", "America/New_York", "UTC", None, "date"], [45, 30, 12, 3, 10])[0]
    days_back = rng.randint(30, 700) if all_active and recurring else rng.randint(-365, 730)
    day = (QUERY_START - dt.timedelta(days=days_back)).date()
    if zone == "date":
        start: dt.datetime | dt.date = day
        end: dt.datetime | dt.date = day + dt.timedelta(days=rng.choice([1, 1, 1, 2, 3]))
        tz = None
    else:
        start = dt.datetime.combine(day, dt.time(rng.randint(7, 19), rng.choice([0, 15, 30, 45])))
        end = start + dt.timedelta(minutes=rng.choice([15, 30, 30, 45, 60, 60, 90, 120]))
        tz = zone
    uid = f"{rng.getrandbits(64):016X}-{n:05d}"
    lines = [
        f"UID:{uid}",
        "DTSTAMP:20261101T120000Z",
        f"DTSTART{ical.stamp(start, tz)}",
        f"DTEND{ical.stamp(end, tz)}",
        f"SUMMARY:Event {n}",
        "TRANSP:" + rng.choices(["OPAQUE", "TRANSPARENT"], [1, 1] if zone == "date" else [9, 1])[0],
        "SEQUENCE:0",
    ]
    if rng.random() < 0.05:
        lines.append("STATUS:" + rng.choice(["CANCELLED", "TENTATIVE"]))
    override: list[str] = []
    if recurring:
        freq = rng.choices(["WEEKLY", "DAILY", "MONTHLY", "YEARLY"], [50, 15, 20, 15])[0]
        if zone == "date":  # recurring all-day events are birthdays and anniversaries
            freq = "YEARLY"
        rule = f"FREQ={freq}"
        if freq == "WEEKLY" and rng.random() < 0.3:
            rule += ";BYDAY=MO,WE,FR" if rng.random() < 0.5 else ";INTERVAL=2"
        if freq == "MONTHLY" and rng.random() < 0.5:
            rule += ";BYDAY=2TU"
        end_kind = "open" if all_active else rng.choices(["count", "until", "open"], [35, 35, 30])[0]
        if end_kind == "count":
            rule += f";COUNT={rng.randint(3, 60)}"
        elif end_kind == "until":
            until = dt.datetime.combine(day + dt.timedelta(days=rng.randint(30, 700)), dt.time(23, 59, 59))
            rule += f";UNTIL={until:%Y%m%d}" if zone == "date" else f";UNTIL={until:%Y%m%dT%H%M%S}Z"
        lines.append(f"RRULE:{rule}")
        step = {"WEEKLY": 7, "DAILY": 1, "MONTHLY": 0, "YEARLY": 0}[freq]
        if step and rng.random() < 0.3:
            lines.append(f"EXDATE{ical.stamp(start + dt.timedelta(days=step * rng.randint(1, 3)), tz)}")
        if step and rng.random() < 0.2:
            original = start + dt.timedelta(days=step * 4)
            moved = original + dt.timedelta(hours=2) if isinstance(original, dt.datetime) else original
            length = end - start  # type: ignore[operator]
            override = [
                f"UID:{uid}",
                "DTSTAMP:20261101T120000Z",
                f"RECURRENCE-ID{ical.stamp(original, tz)}",
                f"DTSTART{ical.stamp(moved, tz)}",
                f"DTEND{ical.stamp(moved + length, tz)}",
                "SUMMARY:Moved",
                "SEQUENCE:1",
            ]
    vevents = [lines, override] if override else [lines]
    return ical.vcalendar(*vevents, head=["CALSCALE:GREGORIAN", *ical.vtimezone_for(tz)], prodid=ical.APPLE_PRODID)


def generate(total: int, share: float, seed: int, all_active: bool) -> Corpus:
    rng = random.Random(seed)
    names = ["icloud-work", "icloud-home", "icloud-family", "appointments"]
    texts: dict[str, list[str]] = {name: [] for name in names}
    recurring = round(total * share)
    flags = [True] * recurring + [False] * (total - recurring)
    rng.shuffle(flags)
    for n, flag in enumerate(flags):
        texts[rng.choices(names, [50, 25, 15, 10])[0]].append(_event(rng, n, flag, all_active))
    return Corpus(texts, recurring, total)


def engines(corpus: Corpus, parsed: dict[str, list[icalendar.Calendar]], rules: av.Rules) -> dict[str, Engine]:
    """The engines to compare. A peer is added here, e.g. Radicale's free-busy REPORT."""
    sources = [av.Source(name, cals) for name, cals in parsed.items()]

    def calmirror_engine(window: Window) -> list[tuple[dt.datetime, dt.datetime]]:
        return av.busy_intervals(sources, *window, rules)

    return {"calmirror": calmirror_engine}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--recurring", type=float, default=0.20, help="share of recurring events")
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--step", type=int, default=1, help="days between successive windows (>= 91 defeats the per-series block memo)"
    )
    parser.add_argument("--seed", type=int, default=5545)
    parser.add_argument("--all-active", action="store_true", help="every series open-ended and started earlier")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    corpus = generate(args.events, args.recurring, args.seed, args.all_active)
    started = time.perf_counter()
    parsed = {name: [av.parse_calendar(t) for t in texts] for name, texts in corpus.texts.items()}
    parse_s = time.perf_counter() - started
    rules = av.Rules(ZoneInfo("Europe/Berlin"), frozenset({"me@example.com"}))
    runners = engines(corpus, parsed, rules)
    starts = [QUERY_START + dt.timedelta(days=i * args.step) for i in range(args.runs)]
    windows = [(start, start + dt.timedelta(days=args.days)) for start in starts]

    av.clear_cache()
    first = time.perf_counter()
    reference = runners["calmirror"](windows[0])
    cold_ms = (time.perf_counter() - first) * 1000  # includes compiling every calendar once

    results: dict[str, dict[str, float]] = {}
    answers: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for name, run in runners.items():
        run(windows[0])  # warm-up, as the daemon would have done by its first real query
        timings = []
        for window in windows:
            t0 = time.perf_counter()
            answer = run(window)
            timings.append((time.perf_counter() - t0) * 1000)
            if window == windows[0]:
                answers[name] = answer
        results[name] = {
            "median_ms": statistics.median(timings),
            "p95_ms": _percentile(timings, 0.95),
            "min_ms": min(timings),
            "max_ms": max(timings),
        }
    skipped = av.skipped([av.Source(n, c) for n, c in parsed.items()], *windows[0], rules)

    report = {
        "events": corpus.total,
        "recurring": corpus.recurring,
        "window_days": args.days,
        "step_days": args.step,
        "runs": args.runs,
        "all_active": args.all_active,
        "parse_s": round(parse_s, 2),
        "first_query_cold_ms": round(cold_ms, 1),
        "busy_intervals_in_first_window": len(reference),
        "skipped_events": len(skipped),
        "engines": {k: {m: round(v, 2) for m, v in r.items()} for k, r in results.items()},
        "agree_with_calmirror": {k: v == reference for k, v in answers.items()},
        "goal_median_ms": GOAL_MS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"corpus: {corpus.total} events ({corpus.recurring} recurring), parsed in {parse_s:.2f} s"
        + (" [all series active]" if args.all_active else "")
    )
    print(
        f"first query incl. compiling all calendars: {cold_ms:.1f} ms; "
        f"{len(reference)} busy intervals in the first window; {len(skipped)} events skipped"
    )
    print(f"{args.days}-day query, {args.runs} runs, windows {args.step} day(s) apart:")
    base = results["calmirror"]["median_ms"]
    print(f"  {'engine':<22}{'median ms':>11}{'p95 ms':>10}{'x calmirror':>13}{'agrees':>8}")
    for name, r in results.items():
        agrees = "yes" if answers[name] == reference else "NO"
        print(f"  {name:<22}{r['median_ms']:>11.2f}{r['p95_ms']:>10.2f}{r['median_ms'] / base:>13.2f}{agrees:>8}")
    print(f"peak RSS of this process (corpus, parsed calendars, memos): {report['peak_rss_mb']} MB")
    ratio = base / GOAL_MS
    print(f"goal: median < {GOAL_MS:.0f} ms -> ratio {ratio:.2f} ({'met' if ratio < 1 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
