"""What the busy index stores for one resource: pure, computed by the engine itself.

The index holds each resource's busy occurrences over a rolling horizon (`HORIZON_BACK`
before today's UTC midnight to `HORIZON_AHEAD` after it), so a query is an SQL range scan
instead of parsing 10,000 events. The rows are the engine's own output (`engine.walk_item`),
so the index and the engine cannot disagree about what an event means.

Why it is shaped this way:

* Rows are independent of the query's switches: travel time, tentative time and all-day
  events are kept as columns and applied by the query. What cannot be a column (the zone
  floating times and dates are read in, the user's addresses that a DECLINED must match)
  is folded into `fingerprint`; when it changes, the whole index is rebuilt once.
* A resource is walked once over the whole horizon; only when the engine had to stand in
  for occurrences (a rule too dense to expand, marked approximate) or skip a series there is
  it walked again in `CHUNK`-long windows, so a dense rule gets the engine's bounded work
  per window, never one approximation for three years. Each occurrence is then kept by the
  one chunk its start falls in (or the first chunk, for one that started before it).
* A dense rule (every 15 minutes, every hour) would put over 100,000 rows into the index
  for one resource. Its occurrences that overlap or touch, and that say the same about busy
  time (same UID, event, all-day flag and approximation), are stored as one row: busy time is
  their union, and the query's travel time and tentative switches apply to the merged row as
  they would to each part (`merge_dense`). Ordinary resources keep one row per occurrence,
  which the week view shows.
* Times are integer microseconds since the epoch: exact, comparable in SQL, and able to
  hold the years 1 to 9999 that valid data may use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator

from calmirror.availability import engine
from calmirror.availability.index import single_index
from calmirror.availability.intervals import shift
from calmirror.availability.rules import my_partstat
from calmirror.availability.simple_event import single_of
from calmirror.model import BusySpan, IndexedItem
from calmirror.raw_text import shown

UTC = dt.UTC
INDEX_VERSION = 12  # moves when what a row means changes, or the engine's answer for a text: the index is rebuilt
HORIZON_BACK = dt.timedelta(days=365)
HORIZON_AHEAD = dt.timedelta(days=730)
CHUNK = dt.timedelta(days=32)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
parsed = 0  # texts parsed by this module in this process (tests: a restart parses none)
_US = dt.timedelta(microseconds=1)
DENSE_ROWS = 2_000  # more occurrences than this in one walk: merged where they touch (more than daily for years)


def to_us(value: dt.datetime) -> int:
    return (value.astimezone(UTC) - _EPOCH) // _US


def from_us(value: int) -> dt.datetime:
    return shift(_EPOCH, value * _US)


def horizon_at(now: dt.datetime) -> tuple[int, int]:
    """The horizon at `now`, moving at UTC midnight only."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_us(day - HORIZON_BACK), to_us(day + HORIZON_AHEAD)


def index_rules(rules: engine.Rules) -> engine.Rules:
    """The rules the rows are computed under: every switch on (the query applies them)."""
    return engine.Rules(tz=rules.tz, me=rules.me, tentative_busy=True, travel_time=True)


def fingerprint(rules: engine.Rules) -> str:
    """What the rows depend on beyond the texts themselves."""
    return json.dumps([INDEX_VERSION, str(rules.tz.key), sorted(rules.me)])


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _span(hit: engine.ItemHit, me: frozenset[str]) -> BusySpan:
    start, end, uid, info, all_day, approximate = hit
    answer = my_partstat(info, me) if me and info.attendees else None
    travel = info.travel if info.travel and not all_day else dt.timedelta(0)
    return BusySpan(
        uid=uid,
        summary=shown(info.summary),  # (SQLite keeps UTF-8 text: bytes that are not are read as Windows-1252)
        start=to_us(start),
        end=to_us(end),
        travel=travel // _US,
        all_day=all_day,
        tentative=info.tentative,
        maybe=info.tentative or answer == "TENTATIVE",
        approximate=approximate,
        unavailable=info.unavailable,
    )


def _walk(
    found: engine.SourceIndex, rules: engine.Rules, lo: dt.datetime, hi: dt.datetime | None, window: tuple[int, int]
) -> Iterator[engine.ItemHit]:
    """Occurrences touching `window`: in one walk when the engine expands the resource fully
    and exactly there (the common case), else in `CHUNK`s, each occurrence once: a chunk
    keeps those starting in it, the first chunk also those that started before it."""
    a, b = from_us(window[0]), from_us(window[1])
    first = max(a, lo)
    last = b if hi is None else min(b, hi)
    if first >= last:
        return
    problems: list[engine.Skipped] = []
    whole = list(engine.walk_item(found, first, last, rules, problems))
    if not problems and not any(hit[5] for hit in whole):
        yield from whole
        return
    chunk = a + (first - a) // CHUNK * CHUNK
    leading = True
    while chunk < last:
        end = min(chunk + CHUNK, b)
        for hit in engine.walk_item(found, chunk, end, rules):
            if hit[0] >= chunk or leading:
                yield hit
        leading = False
        chunk = end


def merge_dense(hits: list[engine.ItemHit]) -> list[engine.ItemHit]:
    """`hits`, with those of one event that overlap or touch merged into one, when there are
    more than `DENSE_ROWS`; the union of busy time is unchanged under every query switch.

    Hits merge only when every field but the times is the same (the event's info object is
    shared by the occurrences of one master), and only when the later one starts no later
    than the earlier ends before any travel time: with travel time on, the merged row's
    start moves back by the travel as the first part's did, and the later parts' travel
    lies inside the merged row."""
    if len(hits) <= DENSE_ROWS:
        return hits
    groups: dict[tuple[object, ...], list[engine.ItemHit]] = {}
    for hit in hits:
        groups.setdefault((hit[2], id(hit[3]), hit[4], hit[5]), []).append(hit)
    merged: list[engine.ItemHit] = []
    for group in groups.values():
        group.sort(key=lambda hit: (hit[0], hit[1]))
        current = group[0]
        for hit in group[1:]:
            if current[0] < current[1] and hit[0] < hit[1] and hit[0] <= current[1]:
                if hit[1] > current[1]:
                    current = (current[0], hit[1], *current[2:])
                continue
            merged.append(current)
            current = hit
        merged.append(current)
    merged.sort(key=lambda hit: (hit[0], hit[1]))
    return merged


def bounds(found: engine.SourceIndex) -> tuple[dt.datetime, dt.datetime | None] | None:
    """The earliest and latest instant the resource can occupy (travel included); None when
    it holds no usable event."""
    parts = [(s.lo, s.hi) for s in (*found.short, *found.long)] + [(s.lo, s.hi) for s in found.series]
    if not parts:
        return None
    his = [p[1] for p in parts]
    return min(p[0] for p in parts), (None if any(h is None for h in his) else max(h for h in his if h is not None))


def _read(text: str) -> tuple[engine.SourceIndex, tuple[dt.datetime, dt.datetime | None]] | None:
    """The resource's engine index and bounds; None when it holds no usable event."""
    global parsed
    parsed += 1
    single = single_of(text)
    if single is not None:
        found = single_index(single)
    else:
        try:
            found = engine.item_index(engine.parse_calendar(text))
        except ValueError:
            return None
    edges = bounds(found)
    return None if edges is None else (found, edges)


def index_text(text: str, rules: engine.Rules, window: tuple[int, int]) -> IndexedItem:
    """One resource's index entry over `window` (the horizon); an unreadable text gets an
    entry without rows, so it is not parsed again until it changes."""
    known = digest(text)
    read = _read(text)
    if read is None:
        return IndexedItem(known, None, None, ())
    found, (lo, hi) = read
    wide = index_rules(rules)
    spans = tuple(_span(hit, wide.me) for hit in merge_dense(list(_walk(found, wide, lo, hi, window))))
    return IndexedItem(known, to_us(lo), None if hi is None else to_us(hi), spans)


def index_texts(texts: dict[str, str], rules: engine.Rules, window: tuple[int, int]) -> dict[str, IndexedItem]:
    """`index_text` of several resources by href: one call a check worker makes for a whole
    mirror batch, beside Radicale's check of it (`check_pool.SideJob`)."""
    return {href: index_text(text, rules, window) for href, text in texts.items()}


def extend_text(text: str, rules: engine.Rules, old_end: int, new_end: int) -> tuple[BusySpan, ...]:
    """The rows a horizon moving from `old_end` to `new_end` adds: occurrences starting in
    between (those starting earlier are already indexed)."""
    read = _read(text)
    if read is None:
        return ()
    found, (lo, hi) = read
    wide = index_rules(rules)
    added = [hit for hit in _walk(found, wide, lo, hi, (old_end, new_end)) if to_us(hit[0]) >= old_end]
    return tuple(_span(hit, wide.me) for hit in merge_dense(added))


def windows_text(text: str, rules: engine.Rules, windows: list[tuple[int, int]]) -> list[tuple[BusySpan, ...]]:
    """The rows of each window (years past the horizon) from one parse of the text."""
    read = _read(text)
    if read is None:
        return [() for _ in windows]
    found, (lo, hi) = read
    wide = index_rules(rules)
    return [
        tuple(_span(hit, wide.me) for hit in merge_dense(list(_walk(found, wide, lo, hi, window))))
        for window in windows
    ]
