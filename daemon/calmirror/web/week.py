"""The week as people look at it: days, busy blocks with where they came from, free ranges.

One pure function (`build_week`) feeds the web page, `calmirror week` and the page's JSON, so
the three cannot disagree with each other; they agree with `availability --json` because
the busy time here is the engine's own `busy_intervals` over the same sources and rules.
Titles are replaced by "Busy" here, once, for sources whose privacy says so, so no
renderer can forget to.

Dates people type (`today`, `next monday`, `+3d`, `2026-12-07`) are parsed here too, against
a `today` handed in: no clock is read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from calmirror.availability import engine, slots
from calmirror.availability.intervals import Interval, merge
from calmirror.errors import UserError

UTC = dt.UTC
DAYS = 7
DEFAULT_SLOT = dt.timedelta(minutes=30)
DEFAULT_HOURS = (dt.time(9), dt.time(17))
PRIVATE_TITLE = "Busy"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SHIFT = re.compile(r"^([+-])\s*(\d{1,4})\s*(d|day|days|w|week|weeks)$")
DATE_HINT = "use today, tomorrow, monday, next monday, +3d or 2026-12-07"


class BadDate(UserError):
    def __init__(self, text: str) -> None:
        super().__init__(f"date {text!r}: not understood; {DATE_HINT}")
        self.text = text


def parse_day(text: str, today: dt.date) -> dt.date:
    """A day from what a person types. `monday` is the coming Monday (today when it is one);
    `next monday` is the Monday of next week (Monday to Sunday weeks)."""
    value = " ".join(text.strip().lower().split())
    if value in ("", "today", "now"):
        return today
    if value == "tomorrow":
        return today + dt.timedelta(days=1)
    if value == "yesterday":
        return today - dt.timedelta(days=1)
    shift = _SHIFT.match(value)
    if shift:
        count = int(shift[2]) * (7 if shift[3].startswith("w") else 1)
        return today + dt.timedelta(days=count if shift[1] == "+" else -count)
    words = value.split(" ")
    prefix, name = (words[0], words[1]) if len(words) == 2 else ("", words[0])
    wanted = next((i for i, d in enumerate(_WEEKDAYS) if name in (d, d[:3])), None)
    if wanted is not None and len(words) <= 2 and prefix in ("", "this", "next"):
        if prefix == "next":
            return today + dt.timedelta(days=7 - today.weekday() + wanted)
        return today + dt.timedelta(days=(wanted - today.weekday()) % 7)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadDate(text) from None


@dataclass(frozen=True)
class SourceLabel:
    """How one source of busy time is shown: its name, colour and privacy."""

    name: str  # what a person calls it: the iCloud calendar's name, "Appointments", "Blocked"
    kind: str  # "appointments" | "blocked" | "mirror"
    color: str  # "#rrggbb" (already checked: it goes into a stylesheet)
    private: bool = False  # busy only: no titles


@dataclass(frozen=True)
class Block:
    """One busy occurrence as shown on one day (a multi-day event shows on each day it touches)."""

    source: str  # the collection it came from
    calendar: str  # the source's display name
    kind: str
    title: str
    start: dt.datetime  # the occurrence's own local times, unclipped
    end: dt.datetime
    all_day: bool
    tentative: bool
    uid: str

    def minutes_on(self, day: dt.date, zone: ZoneInfo) -> tuple[int, int]:
        """Minutes from local midnight where the block starts and ends on `day`, clipped to it."""
        day_start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        a, b = max(self.start, day_start), min(self.end, day_end)
        return int((a - day_start).total_seconds() // 60), int((b - day_start).total_seconds() // 60)


@dataclass(frozen=True)
class Day:
    date: dt.date
    blocks: tuple[Block, ...]
    free: tuple[Interval, ...]  # local times, merged ranges where slots of the chosen length fit

    @property
    def timed(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if not b.all_day)

    @property
    def all_day(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.all_day)


@dataclass(frozen=True)
class Week:
    first: dt.date
    zone: ZoneInfo
    days: tuple[Day, ...]
    busy: tuple[Interval, ...]  # merged, clipped to the window, local times
    slot: dt.timedelta
    hours: tuple[dt.time, dt.time] | None
    labels: Mapping[str, SourceLabel] = field(default_factory=dict)

    @property
    def start(self) -> dt.datetime:
        return day_bounds(self.first, self.zone)[0]

    @property
    def end(self) -> dt.datetime:
        return day_bounds(self.first + dt.timedelta(days=len(self.days) - 1), self.zone)[1]


def day_bounds(day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight to local midnight (23 or 25 hours across a DST change)."""
    return (
        dt.datetime.combine(day, dt.time(0), tzinfo=zone),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone),
    )


def window(first: dt.date, zone: ZoneInfo, days: int = DAYS) -> tuple[dt.datetime, dt.datetime]:
    """The UTC window of `days` local days from `first`: what `availability --from/--to` asks."""
    return (
        day_bounds(first, zone)[0].astimezone(UTC),
        day_bounds(first + dt.timedelta(days=days - 1), zone)[1].astimezone(UTC),
    )


def _label_for(name: str, labels: Mapping[str, SourceLabel]) -> SourceLabel:
    return labels.get(name) or SourceLabel(name=name, kind="mirror", color="#8e8e93")


def build_week(
    sources: Sequence[engine.Source] | Callable[[dt.datetime, dt.datetime], list[engine.BusyOccurrence]],
    rules: engine.Rules,
    first: dt.date,
    labels: Mapping[str, SourceLabel],
    *,
    days: int = DAYS,
    slot: dt.timedelta = DEFAULT_SLOT,
    hours: tuple[dt.time, dt.time] | None = DEFAULT_HOURS,
) -> Week:
    """The week from `first` in the rules' zone: each day's busy blocks and free ranges."""
    zone = rules.tz
    ws, we = window(first, zone, days)
    # The daemon and the CLI hand in the busy index's query; tests hand in parsed sources.
    occurrences = sources(ws, we) if callable(sources) else engine.busy_occurrences(sources, ws, we, rules)
    # What `engine.busy_intervals` computes (the same walk, clipped and merged), without walking twice.
    busy = merge((max(o.start, ws), min(o.end, we)) for o in occurrences)
    per_day: list[list[Block]] = [[] for _ in range(days)]
    for o in occurrences:  # each block onto the local days it touches, in one pass
        b = _block(o, _label_for(o.source, labels), zone)
        last = (b.end - dt.timedelta(microseconds=1)).date() if b.end > b.start else b.start.date()
        for index in range(max(0, (b.start.date() - first).days), min(days - 1, (last - first).days) + 1):
            per_day[index].append(b)
    out: list[Day] = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        start, end = (b.astimezone(UTC) for b in day_bounds(day, zone))
        free = merge(slots.free_slots(busy, start, end, slot, zone, hours))
        out.append(Day(day, tuple(per_day[offset]), tuple((a.astimezone(zone), b.astimezone(zone)) for a, b in free)))
    local_busy = tuple((a.astimezone(zone), b.astimezone(zone)) for a, b in busy)
    return Week(first, zone, tuple(out), local_busy, slot, hours, dict(labels))


def _block(occurrence: engine.BusyOccurrence, label: SourceLabel, zone: ZoneInfo) -> Block:
    title = PRIVATE_TITLE if label.private else (occurrence.summary.strip() or PRIVATE_TITLE)
    return Block(
        source=occurrence.source,
        calendar=label.name,
        kind=label.kind,
        title=title,
        start=occurrence.start.astimezone(zone),
        end=occurrence.end.astimezone(zone),
        all_day=occurrence.all_day,
        tentative=occurrence.tentative,
        uid=occurrence.uid,
    )


def to_json(week: Week) -> dict[str, object]:
    """What `calmirror week --json` prints and the page serves: local ISO times, like `availability`."""
    return {
        "timezone": str(week.zone),
        "first_day": week.first.isoformat(),
        "slot_minutes": int(week.slot.total_seconds() // 60),
        "hours": None if week.hours is None else [t.strftime("%H:%M") for t in week.hours],
        "busy": [{"start": a.isoformat(), "end": b.isoformat()} for a, b in week.busy],
        "days": [
            {
                "date": d.date.isoformat(),
                "weekday": d.date.strftime("%A"),
                "events": [
                    {
                        "start": b.start.isoformat(),
                        "end": b.end.isoformat(),
                        "title": b.title,
                        "calendar": b.calendar,
                        "source": b.source,
                        "all_day": b.all_day,
                        "tentative": b.tentative,
                    }
                    for b in d.blocks
                ],
                "free": [{"start": a.isoformat(), "end": b.isoformat()} for a, b in d.free],
            }
            for d in week.days
        ],
    }
