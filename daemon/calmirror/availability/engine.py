"""Busy and free time over parsed calendars: the pure availability engine.

Given parsed calendars (mirrors of iCloud conflict calendars, local appointments and
blocked slots) and a window, answer which UTC intervals are busy. No I/O, no clock, no
database: the daemon, the CLI and the double-booking guard hand in what they have read.

Why it is shaped this way:

* Each `icalendar.Calendar` is compiled once and each source indexed once
  (`availability.index`), so asking about many windows over the same 10,000 mirrored
  events does not redo that work. Calendars handed in must not be mutated afterwards:
  a changed resource is a new parse, hence a new object. `clear_cache()` exists for
  benchmarks and tests.
* Single events are bounded and converted here directly; only series go through
  recurring-ical-events (`availability.recurrence` compiles them, `availability.expansion`
  walks them with bounded work, `availability.rrule_bounds` holds the rule arithmetic).
* The busy rules themselves live in `availability.rules`: nothing cached depends on
  the query's `Rules`, so one corpus serves any configuration. Travel time is applied
  here, per occurrence, for the same reason (`Rules.travel_time` switches it).
* Zones are resolved per object when a calendar is compiled (`availability.zones`), never
  through icalendar's process-wide map of TZIDs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import icalendar

from calmirror.availability.durations import mark_exact_durations
from calmirror.availability.expansion import in_one_walk, occurrences
from calmirror.availability.index import SourceIndex, clear_cache, index
from calmirror.availability.instants import to_utc
from calmirror.availability.intervals import Interval, intersect, merge, shift, subtract
from calmirror.availability.lenient import parse_leniently
from calmirror.availability.recurrence import reason
from calmirror.availability.rid_forms import as_read as midnight_rids_as_read
from calmirror.availability.rules import EventInfo, is_busy, normalise_address
from calmirror.availability.zones import without_date_zones
from calmirror.raw_text import shown

UTC = dt.UTC

__all__ = [
    "BusyOccurrence",
    "CalendarParseError",
    "Interval",
    "ItemHit",
    "Rules",
    "Skipped",
    "Source",
    "SourceIndex",
    "busy_intervals",
    "busy_occurrences",
    "candidate_busy",
    "clear_cache",
    "item_index",
    "merge",
    "overlaps",
    "parse_calendar",
    "skipped",
    "to_vfreebusy",
    "walk_item",
]


@dataclass(frozen=True)
class Rules:
    """How the user wants time judged; one per query, from the config."""

    tz: ZoneInfo  # configured zone, for floating times and all-day dates
    me: frozenset[str] = frozenset()  # addresses of the user (Apple ID and aliases)
    tentative_busy: bool = True
    travel_time: bool = True  # X-APPLE-TRAVEL-DURATION blocks the time before timed events

    def __post_init__(self) -> None:
        # Normalised here, once, so config spelling ("mailto:Me@Example.com") cannot
        # silently stop a DECLINED from matching.
        object.__setattr__(self, "me", frozenset(normalise_address(a) for a in self.me if a.strip()))


@dataclass(frozen=True)
class Source:
    """One calendar's parsed content and its per-calendar switches."""

    name: str
    calendars: Sequence[icalendar.Calendar]  # one per resource (.ics)
    allday_busy: bool = True
    exclude_uids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class BusyOccurrence:
    """One busy occurrence, for `--json` and for explaining a refused booking.

    `start`/`end` are the occurrence's own UTC times, not clipped to the window.
    `approximate` marks the one interval that stands for the rest of a series too dense
    to expand (more than `library_series.MAX_OCCURRENCES` occurrences in the window).
    """

    source: str
    uid: str
    summary: str
    start: dt.datetime
    end: dt.datetime
    all_day: bool = False
    tentative: bool = False
    approximate: bool = False
    unavailable: bool = False  # Outlook's out of office


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event the engine could not use, with a short reason safe to log."""

    source: str
    uid: str
    reason: str


class CalendarParseError(ValueError):
    """A resource that is not an iCalendar object; callers skip it and log the reason."""


def parse_calendar(text: str | bytes) -> icalendar.Calendar:
    """Parse one CalDAV resource, turning icalendar's many failure modes into one error type."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CalendarParseError(f"not UTF-8 at byte {exc.start}") from None
    text = text.lstrip("\ufeff")  # some exporters write a UTF-8 byte order mark
    if not text.strip():
        raise CalendarParseError("empty resource")
    text = midnight_rids_as_read(without_date_zones(mark_exact_durations(text)))
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError... on junk
        try:  # one bad alarm, zone or line must not hide the events (`lenient`)
            calendar = parse_leniently(text)
        except Exception:
            raise CalendarParseError(f"unparsable iCalendar ({reason(exc)})") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise CalendarParseError("top-level component is not a VCALENDAR")
    return calendar


# --- the core walk ---------------------------------------------------------------------------


# (start, end, source, uid, info, all_day, approximate): a tuple, as a query may build tens
# of thousands and busy_intervals needs only the first two fields.
_Hit = tuple[dt.datetime, dt.datetime, Source, str, EventInfo, bool, bool]


def _walk(
    sources: Iterable[Source],
    window: tuple[dt.datetime, dt.datetime],
    rules: Rules,
    problems: list[Skipped] | None,
    remember: bool = True,
) -> Iterator[_Hit]:
    """Every busy occurrence touching the window, unclipped, in no particular order."""
    for source in sources:
        yield from _walk_one(source, index(source.calendars, remember), window, rules, problems)


def _walk_one(
    source: Source,
    found: SourceIndex,
    window: tuple[dt.datetime, dt.datetime],
    rules: Rules,
    problems: list[Skipped] | None,
    once: bool = False,
) -> Iterator[_Hit]:
    """`once`: the window is walked once (the busy index), so each series is expanded in
    one walk where that gives the blocks' answer (`expansion.in_one_walk`)."""
    ws, we = window
    tz = rules.tz
    travel = rules.travel_time
    exclude = source.exclude_uids
    if problems is not None:
        problems.extend(Skipped(source.name, uid, why) for uid, why in found.skipped)
    for single in found.singles(ws, we):
        if single.uid in exclude:
            continue
        all_day = not isinstance(single.start, dt.datetime)
        if (all_day and not source.allday_busy) or not is_busy(single.info, rules.me, rules.tentative_busy):
            continue
        start, end = to_utc(single.start, tz), to_utc(single.end, tz)
        if travel and single.info.travel and not all_day and start < end:
            start -= single.info.travel  # a zero-length event needs no travel: nothing to reach
        if start < we and end > ws and start < end:
            yield start, end, source, single.uid, single.info, all_day, False
    for series in found.series:
        if series.lo >= we or (series.hi is not None and series.hi <= ws):
            continue
        if series.uid in exclude:
            continue
        ahead = series.travel if travel else dt.timedelta(0)
        try:
            reach = (ws, shift(we, ahead))
            spans = in_one_walk(series, reach, tz) if once else None
            if spans is None:
                spans = occurrences(series, reach, tz)
        except Exception as exc:  # TooDense, or data the library chokes on: skip this series only
            if problems is not None:
                problems.append(Skipped(source.name, series.uid, reason(exc)))
            continue
        for span in spans:
            start = span.start
            if travel and span.info.travel and not span.all_day and start < span.end:
                start -= span.info.travel
            if (
                start < we
                and span.end > ws
                and start < span.end
                and (source.allday_busy or not span.all_day)
                and is_busy(span.info, rules.me, rules.tentative_busy)
            ):
                yield start, span.end, source, series.uid, span.info, span.all_day, span.approximate


def _check_window(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    ws, we = start.astimezone(UTC), end.astimezone(UTC)
    if we <= ws:
        raise ValueError("window end must be after its start")
    return ws, we


# --- public queries -----------------------------------------------------------------------------


def busy_intervals(sources: Iterable[Source], start: dt.datetime, end: dt.datetime, rules: Rules) -> list[Interval]:
    """Merged, sorted busy intervals in UTC, clipped to [start, end)."""
    ws, we = _check_window(start, end)
    return merge((max(h[0], ws), min(h[1], we)) for h in _walk(sources, (ws, we), rules, None))


def busy_occurrences(
    sources: Iterable[Source], start: dt.datetime, end: dt.datetime, rules: Rules, *, remember: bool = True
) -> list[BusyOccurrence]:
    """Each busy occurrence touching [start, end), sorted by time, with where it came from.
    `remember=False` for calendars parsed for this one query: the memo (`index`) would keep
    them alive after it."""
    window = _check_window(start, end)
    found = [
        BusyOccurrence(
            source.name, uid, shown(info.summary), start, end, all_day, info.tentative, approximate, info.unavailable
        )
        for start, end, source, uid, info, all_day, approximate in _walk(sources, window, rules, None, remember)
    ]
    found.sort(key=lambda o: (o.start, o.end, o.source, o.uid))
    return found


def skipped(sources: Iterable[Source], start: dt.datetime, end: dt.datetime, rules: Rules) -> list[Skipped]:
    """What a query over this window had to leave out, for the log or `calmirror doctor`."""
    problems: list[Skipped] = []
    for _ in _walk(sources, _check_window(start, end), rules, problems):
        pass
    return problems


def candidate_busy(
    candidate: icalendar.Calendar, rules: Rules, horizon: dt.timedelta = dt.timedelta(days=366)
) -> tuple[frozenset[str], list[Interval]]:
    """A new (or changed) event's own UIDs and the busy time it would take, by the same
    rules: a TRANSPARENT or CANCELLED candidate takes none. An open-ended recurring
    candidate is taken up to `horizon` after its first occurrence."""
    found = index([candidate], remember=False)
    singles = found.short + found.long
    own = frozenset(s.uid for s in singles) | frozenset(s.uid for s in found.series)
    bounds = [(s.lo, s.hi) for s in singles] + [(s.lo, s.hi) for s in found.series]
    if not bounds:
        return own, []
    lo = min(b[0] for b in bounds)
    his = [b[1] for b in bounds]
    hi = max(h for h in his if h is not None) if all(h is not None for h in his) else None
    hi = min(hi, shift(lo, horizon)) if hi is not None else shift(lo, horizon)
    return own, merge(h[:2] for h in _walk_one(Source("candidate", [candidate]), found, (lo, hi), rules, None))


def overlaps(
    candidate: icalendar.Calendar,
    sources: Iterable[Source],
    rules: Rules,
    horizon: dt.timedelta = dt.timedelta(days=366),
) -> list[Interval]:
    """Busy time a new (or changed) event would collide with, for the double-booking guard.

    Entries in `sources` with the candidate's UID are ignored, so re-saving an appointment
    does not collide with its own stored copy (see `candidate_busy` for the candidate).
    """
    own, wanted = candidate_busy(candidate, rules, horizon)
    if not wanted:
        return []
    others = [Source(s.name, s.calendars, s.allday_busy, s.exclude_uids | own) for s in sources]
    busy = busy_intervals(others, wanted[0][0], wanted[-1][1], rules)
    return intersect(busy, wanted)


# (start, end, uid, info, all_day, approximate) of one occurrence of one resource
ItemHit = tuple[dt.datetime, dt.datetime, str, EventInfo, bool, bool]


def item_index(calendar: icalendar.Calendar) -> SourceIndex:
    """One resource's index, not remembered (the busy index walks each resource once)."""
    return index([calendar], remember=False)


def walk_item(
    found: SourceIndex,
    start: dt.datetime,
    end: dt.datetime,
    rules: Rules,
    problems: list[Skipped] | None = None,
) -> Iterator[ItemHit]:
    """Every busy occurrence of one resource touching [start, end), unclipped: what the
    busy index stores, so the index and this engine cannot disagree."""
    for h in _walk_one(Source("item", found.calendars), found, _check_window(start, end), rules, problems, once=True):
        yield h[0], h[1], h[3], h[4], h[5], h[6]


def _stamp(value: dt.datetime, up: bool) -> str:
    # %-formatting, not strftime: this runs twice per busy line of every free-busy answer,
    # and strftime was a fifth of the daemon's CPU per REPORT (and unpadded before year 1000).
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond and up:
        value = value.replace(microsecond=0) + dt.timedelta(seconds=1)
    fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    return "%04d%02d%02dT%02d%02d%02dZ" % fields  # noqa: UP031 (measured faster than the f-string)


def to_vfreebusy(
    intervals: Iterable[Interval],
    start: dt.datetime,
    end: dt.datetime,
    dtstamp: dt.datetime | None = None,
    tentative: Iterable[Interval] = (),
    unavailable: Iterable[Interval] = (),
) -> str:
    """An RFC 5545 VFREEBUSY reply in the form a CalDAV free-busy-query returns.

    Times are UTC, one FREEBUSY line per merged interval, in time order: `intervals` as
    FBTYPE=BUSY, and `tentative` (time busy only tentatively: STATUS:TENTATIVE, the user's
    PARTSTAT=TENTATIVE, Outlook's BUSYSTATUS:TENTATIVE) as FBTYPE=BUSY-TENTATIVE (RFC 4791
    §7.10, RFC 5545 §3.2.9) where no BUSY interval covers it: a stretch both are is BUSY, so
    a client reading only BUSY lines never loses firm busy time. `unavailable` (Outlook's
    out of office, BUSYSTATUS:OOF) is FBTYPE=BUSY-UNAVAILABLE, and BUSY only where it is not
    (its time is firm busy time too). DTSTAMP is required by the
    RFC but this module reads no clock: callers pass the current time; without it the window
    start stands in, keeping output reproducible. Busy edges are widened to whole seconds so
    rounding never shrinks busy time.
    """
    ws, we = _check_window(start, end)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calmirror//availability//EN",
        "BEGIN:VFREEBUSY",
        f"DTSTAMP:{_stamp(dtstamp or ws, False)}",
        f"DTSTART:{_stamp(ws, False)}",
        f"DTEND:{_stamp(we, True)}",
    ]
    busy = merge((max(a, ws), min(b, we)) for a, b in intervals)
    away = merge((max(a, ws), min(b, we)) for a, b in unavailable)
    maybe = subtract(merge((max(a, ws), min(b, we)) for a, b in tentative), merge([*busy, *away]))
    kinds = sorted(
        [(a, b, "BUSY") for a, b in subtract(busy, away)]
        + [(a, b, "BUSY-UNAVAILABLE") for a, b in away if a < b]
        + [(a, b, "BUSY-TENTATIVE") for a, b in maybe]
    )
    for a, b, kind in kinds:
        lines.append(f"FREEBUSY;FBTYPE={kind}:{_stamp(a, False)}/{_stamp(b, True)}")
    lines += ["END:VFREEBUSY", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"
