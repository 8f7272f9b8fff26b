"""`busy/`: every busy block of every source in one read-only calendar, without titles.

Many CRMs and booking tools can watch only one calendar for conflicts. `busy/` gives them
all of the user's busy time there: one VEVENT (SUMMARY "Busy", nothing else of the event)
per merged busy block of `appointments/`, `blocked/` and every mirror, computed by the same
engine and rules as `calmirror availability`.

Why it is shaped this way:

* It covers a rolling horizon, `HORIZON_BACK` before today's UTC midnight to
  `HORIZON_AHEAD` after it: a calendar of blocks cannot hold an endless series, and the
  edges move once a day, so the blocks at them are rewritten at most daily. A block
  crossing an edge is cut at it. Free-busy on `busy/` is not limited to the horizon: it
  is answered by the engine, like `availability`.
* A block's UID, href and whole text derive from its start and end alone (DTSTAMP
  included), so an unchanged block keeps its ETag and a refresh is a set difference:
  new blocks added, vanished ones deleted, nothing rewritten. Clients syncing `busy/`
  (sync-collection) see only what really changed; a block that grows is a new block.
* Refreshing is debounced: changes (a mirror batch, a client write) only wake the
  keeper, which waits until changes pause for `DEBOUNCE_S` (at most `MAX_DELAY_S`) and
  then refreshes once, so an initial mirror of 10,000 events is not followed by a
  refresh per batch. The next one waits at least `COOLDOWN_FACTOR` times as long as the
  last took, so the keeper never takes more than a small share of the process.
* A refresh reads the busy index, never parses: the index records where each change lay
  (`busy_changes`), and only the blocks around those ranges are computed again
  (`regions`). The whole horizon is recomputed at start, when the horizon or the rules
  move, after many scattered changes, and at least every `FULL_EVERY_S` as a backstop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calmirror.availability.intervals import Interval, merge
from calmirror.availability.sources import BusySources
from calmirror.availability.spans import from_us
from calmirror.local.store import LocalStore

log = logging.getLogger("calmirror.busy")

HORIZON_BACK = timedelta(days=30)
HORIZON_AHEAD = timedelta(days=365)
DEBOUNCE_S = 1.0
MAX_DELAY_S = 10.0
COOLDOWN_FACTOR = 4.0
FULL_EVERY_S = 3600.0
MAX_RANGES = 500  # more changed ranges than this: one full refresh is cheaper
_STAMP = "%Y%m%dT%H%M%SZ"


def horizon(now: datetime) -> tuple[datetime, datetime]:
    """The window `busy/` covers at `now`: it moves at UTC midnight only."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - HORIZON_BACK, day + HORIZON_AHEAD


def next_move(now: datetime) -> datetime:
    """When the horizon moves next (the coming UTC midnight)."""
    return horizon(now)[0] + HORIZON_BACK + timedelta(days=1)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_STAMP)


def _stamp_up(value: datetime) -> str:
    """Whole seconds, rounded up at the end, so a block never shrinks."""
    value = value.astimezone(UTC)
    if value.microsecond:
        value = value.replace(microsecond=0) + timedelta(seconds=1)
    return value.strftime(_STAMP)


def block_href(block: Interval) -> str:
    return f"busy-{_stamp(block[0])}-{_stamp_up(block[1])}.ics"


def block_text(block: Interval) -> str:
    """The busy-only event of one block: no title, no place, no people."""
    start, end = _stamp(block[0]), _stamp_up(block[1])
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calmirror//busy//EN",
        "BEGIN:VEVENT",
        f"UID:busy-{start}-{end}@calmirror",
        f"DTSTAMP:{start}",
        f"DTSTART:{start}",
        f"DTEND:{end}",
        "SUMMARY:Busy",
        "TRANSP:OPAQUE",
        "CLASS:PRIVATE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True)
class BusyChange:
    """What one refresh does to `busy/`: items to write (href, text) and hrefs to delete."""

    upserts: list[tuple[str, str]]
    deletes: list[str]

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.deletes


def block_of(href: str) -> Interval | None:
    """The block a `busy/` href stands for (the inverse of `block_href`)."""
    parts = href.removesuffix(".ics").split("-")
    if len(parts) != 3 or parts[0] != "busy":
        return None
    try:
        return (
            datetime.strptime(parts[1], _STAMP).replace(tzinfo=UTC),
            datetime.strptime(parts[2], _STAMP).replace(tzinfo=UTC),
        )
    except ValueError:
        return None


def regions(changed: Iterable[Interval], present: Iterable[Interval]) -> list[Interval]:
    """Pure: the windows whose blocks must be computed again after busy time changed within
    `changed`, given the blocks `busy/` holds now. Each window grows to cover every present
    block touching it, so no unchanged busy time crosses its edges and the blocks computed
    inside it are exactly the blocks a whole refresh would find there."""
    blocks = sorted(present)
    out = []
    for lo, hi in merge(changed):
        for b0, b1 in blocks:
            if b0 <= hi and b1 >= lo:
                lo, hi = min(lo, b0), max(hi, b1)
        out.append((lo, hi))
    return merge(out)


def plan_busy(blocks: Iterable[Interval], present: Iterable[str]) -> BusyChange:
    """Pure: the change that makes a calendar holding `present` hrefs hold exactly `blocks`."""
    wanted = {block_href(block): block for block in blocks}
    have = set(present)
    upserts = [(href, block_text(block)) for href, block in sorted(wanted.items()) if href not in have]
    return BusyChange(upserts, sorted(have - wanted.keys()))


class BusyCalendar:
    """Keeps `busy/` equal to the merged busy blocks over the horizon, in its own thread."""

    def __init__(
        self,
        busy: BusySources,
        store: LocalStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        debounce_s: float = DEBOUNCE_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self.busy, self.store, self.clock = busy, store, clock
        self.debounce_s, self.max_delay_s = debounce_s, max_delay_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.refreshed = 0  # how many refreshes ran, for status and tests
        self.full_refreshes = 0
        self.last_cost_s = 0.0  # how long the last refresh took
        self._seq = 0  # the last change of the busy index followed
        self._full = True  # the next refresh recomputes the whole horizon
        self._covered: tuple[datetime, datetime] | None = None
        self._last_full = 0.0

    def mark_changed(self, collection: str = "") -> None:
        """A source changed: refresh soon (debounced). Cheap; safe from any thread. Without a
        collection (the rules may have changed) the whole horizon is recomputed."""
        if not collection:
            self._full = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def refresh(self) -> BusyChange:
        """Recompute the blocks where busy time changed and apply the difference to `busy/`."""
        began = time.monotonic()
        self.busy.upkeep.roll()  # the busy index's horizon moves once a day, at the same midnight
        self.busy.upkeep.ensure()
        start, end = horizon(self.clock())
        seq, changed = self.busy.state.busy_changes_since(self._seq)
        present = self.store.busy_item_names()
        full = (
            self._full
            or self._covered != (start, end)
            or None in changed
            or len(changed) > MAX_RANGES
            or time.monotonic() - self._last_full > FULL_EVERY_S
        )
        self._full = False
        if full:
            change = plan_busy(self.busy.busy(start, end), present)
            self.full_refreshes += 1
            self._last_full = time.monotonic()
        else:
            change = self._plan_around([r for r in changed if r is not None], present, (start, end))
        self._seq, self._covered = seq, (start, end)
        self.busy.state.busy_changes_done(seq)
        if not change.empty:
            refused = self.store.apply_busy(change.upserts, change.deletes)
            for href, reason in refused:
                log.warning("busy/: %s not written: %s", href, reason)
            log.info("busy/: %d block(s) added, %d removed", len(change.upserts), len(change.deletes))
        self.refreshed += 1
        self.last_cost_s = time.monotonic() - began
        return change

    def _plan_around(self, changed: list[tuple[int, int]], present: set[str], edges: Interval) -> BusyChange:
        blocks = {href: block for href in present if (block := block_of(href)) is not None}
        upserts: list[tuple[str, str]] = []
        deletes = sorted(href for href in present if href not in blocks)
        for lo, hi in regions([(from_us(a), from_us(b)) for a, b in changed], blocks.values()):
            a, b = max(lo, edges[0]), min(hi, edges[1])
            if a >= b:
                continue
            inside = [href for href, (b0, b1) in blocks.items() if b0 <= b and b1 >= a]
            part = plan_busy(self.busy.busy(a, b), inside)
            upserts += part.upserts
            deletes += part.deletes
        return BusyChange(upserts, deletes)

    def run(self) -> None:
        """Refresh at once, then after every (debounced) change and whenever the horizon moves."""
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # a store or state hiccup: the next change or move retries
                log.exception("busy/ could not be refreshed")
            until_move = (next_move(self.clock()) - self.clock()).total_seconds()
            self._stop.wait(self.last_cost_s * COOLDOWN_FACTOR)
            self._wake.wait(max(1.0, until_move))
            if self._stop.is_set():
                return
            self._settle()

    def _settle(self) -> None:
        """Wait until changes pause for `debounce_s`, but no longer than `max_delay_s`."""
        deadline = time.monotonic() + self.max_delay_s
        while self._wake.is_set() and not self._stop.is_set():
            self._wake.clear()
            left = deadline - time.monotonic()
            if left <= 0 or not self._wake.wait(min(self.debounce_s, left)):
                return
