"""Busy time from the busy index: what the guard, free-busy, `availability`, the week page
and `busy/` ask.

The index (`state/busy.py`, kept current by `availability.busy_upkeep`) holds every
source's busy occurrences over a rolling horizon, so a window inside it is one SQL range
scan, never a parse. Past the horizon, rows are kept a calendar year at a time
(`state/busy_far.py`): the first question about such a year parses the resources that reach
it, later ones are range scans too. Nothing here keeps parsed events: the daemon stays small
however large the mirrors grow.

A mirror's busy time comes from iCloud's exact text of each resource, kept in the state
database, not from the Radicale collection: Radicale may hold a compatible copy, or nothing
at all for an object it refused, and busy time must not depend on that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import icalendar

from calmirror.availability import engine, far_years, spans
from calmirror.availability.blocks import MergedBlocks
from calmirror.availability.busy_upkeep import PUSHED_IN_ICLOUD, BusyUpkeep, SourceSpec
from calmirror.availability.intervals import Interval, intersect, merge, merge_clipped, subtract
from calmirror.availability.spans import from_us, to_us
from calmirror.config import Settings
from calmirror.local.layout import BUSY
from calmirror.local.store import LocalStore
from calmirror.model import KIND_UNAVAILABLE, BusySpan
from calmirror.state import State
from calmirror.state.busy import SpanQuery, SpanRow
from calmirror.state.busy_far import FarItem, FarPiece, FarQuery

log = logging.getLogger("calmirror.busy")
_OUTSIDE = threading.Lock()  # one window past the horizon computed at a time (see `_outside_direct`)
FAR_YEARS = 3  # years past the horizon one question may compute and keep
FAR_PAGE = 200  # entries computed per transaction when a year is filled
__all__ = ["PUSHED_IN_ICLOUD", "BusySources", "ask_daemon", "from_vfreebusy"]


class BusySources:
    def __init__(
        self,
        store: LocalStore,
        state: State,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        notified: bool = False,
    ) -> None:
        """`notified`: every change to `appointments/` and `blocked/` is announced through
        `mark_changed` (the daemon), so queries need not look at the folders."""
        self.store, self.state = store, state
        self.upkeep = BusyUpkeep(store, state, settings, clock, notified=notified)
        self.blocks = MergedBlocks(state.data_version, state.busy_extents)  # merged busy time per week

    @property
    def settings(self) -> Settings:
        return self.upkeep.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.upkeep.settings = value

    def rules(self) -> engine.Rules:
        return self.upkeep.rules()

    def warm(self) -> None:
        """At start, off the request path: recompute the entries whose texts changed while the
        daemon was down (normally none: reading the digests takes a fraction of a second)."""
        self.upkeep.reconcile()

    def mark_changed(self, collection: str) -> None:
        """A local collection changed in this process: bring its entries up to date now, unless
        the index is being rebuilt (the rebuild reads it anyway)."""
        self.upkeep.changed(collection)
        self.upkeep.ensure(wait=0)

    def occurrences(
        self,
        start: datetime,
        end: datetime,
        *,
        only: str | None = None,
        skip_uids: Iterable[str] = (),
        wait: float = -1,
    ) -> list[engine.BusyOccurrence] | None:
        """Each busy occurrence touching [start, end), sorted as the engine sorts them; `only` a
        collection's own events (a mirror then keeps every event it holds). None when the
        index stayed busy for `wait` seconds."""
        found = self._gather(start, end, only, skip_uids, wait)
        if found is None:
            return None
        query, names, travel, outside = found
        rows = self.state.busy_spans(query) if query is not None else []
        out = [_occurrence(row, names, travel) for row in rows] + outside
        out.sort(key=lambda o: (o.start, o.end, o.source, o.uid))
        return out

    def _gather(
        self,
        start: datetime,
        end: datetime,
        only: str | None,
        skip_uids: Iterable[str],
        wait: float,
        rules: engine.Rules | None = None,
        unavailable: bool = False,
    ) -> tuple[SpanQuery | None, dict[str, str], bool, list[engine.BusyOccurrence]] | None:
        """The index query for the part of the window inside its horizon (None: no part), and
        the engine's occurrences for the parts outside it (`unavailable`: out of office only)."""
        ws, we = engine._check_window(start, end)
        rules = self.rules() if rules is None else rules
        if not self.upkeep.ensure(wait, rules):
            return None
        specs = self.upkeep.sources()
        if only is not None:
            specs = [
                SourceSpec(s.key, s.name, s.collection, s.allday_busy, False) for s in specs if s.collection == only
            ]
        meta = self.state.busy_meta()
        assert meta is not None  # ensure() built it
        h0, h1 = int(meta["horizon"][0]), int(meta["horizon"][1])
        a, b = to_us(ws), to_us(we)
        inside = (max(a, h0), min(b, h1))
        skip = sorted(set(skip_uids))
        query = None
        if inside[0] < inside[1] and specs:
            query = SpanQuery(
                start=inside[0],
                end=inside[1],
                sources=[s.key for s in specs],
                allday=[s.key for s in specs if s.allday_busy],
                mirrors=[s.key for s in specs if s.mirror],
                travel=rules.travel_time,
                tentative=rules.tentative_busy,
                skip_uids=skip,
                unavailable=unavailable,
            )
        outside = []
        if specs and (a < h0 or b > h1):
            outside = self._outside(specs, rules, (a, b), (h0, h1), inside, frozenset(skip))
            outside = [o for o in outside if o.unavailable] if unavailable else outside
        return query, {s.key: s.name for s in specs}, rules.travel_time, outside

    def _merged(
        self,
        start: datetime,
        end: datetime,
        only: str | None = None,
        skip_uids: Iterable[str] = (),
        wait: float = -1,
        rules: engine.Rules | None = None,
        unavailable: bool = False,
    ) -> list[Interval] | None:
        """Merged busy time clipped to the window, merged in integers: no object per occurrence."""
        found = self._gather(start, end, only, skip_uids, wait, rules, unavailable)
        if found is None:
            return None
        query, _names, _travel, outside = found
        a, b = to_us(start), to_us(end)
        ints = self.blocks.pairs(query) if query is not None else []  # travel applied by the query
        if query is not None and (a < query.start or b > query.end):
            # The weeks stop at the horizon's, clipped at their edges; an occurrence the index
            # holds may cross the horizon and reach past them, and the years outside leave it
            # to the index: read whole the rows touching each edge of the inside part.
            for lo, hi in ((query.start, query.start + 1), (query.end - 1, query.end)):
                ints += self.state.busy_extents(replace(query, start=lo, end=hi))
        ints += [(to_us(o.start), to_us(o.end)) for o in outside]
        return [(from_us(lo), from_us(hi)) for lo, hi in merge_clipped(ints, a, b)]

    def _outside(
        self,
        specs: list[SourceSpec],
        rules: engine.Rules,
        window: tuple[int, int],
        horizon: tuple[int, int],
        inside: tuple[int, int],
        skip: frozenset[str],
    ) -> list[engine.BusyOccurrence]:
        """Occurrences in the parts of the window outside the horizon (what touches the inside
        part is the index's), from the years kept past it (`state/busy_far.py`): the first
        question about a year computes the entries reaching it, later ones read rows. A window
        over more than `FAR_YEARS` years asks the engine directly instead."""
        pieces = far_years.pieces(window, horizon)
        if len({p.year for p in pieces}) <= FAR_YEARS:
            query = FarQuery(
                sources=[s.key for s in specs],
                allday=[s.key for s in specs if s.allday_busy],
                mirrors=[s.key for s in specs if s.mirror],
                travel=rules.travel_time,
                tentative=rules.tentative_busy,
                skip_uids=sorted(skip),
            )
            names = {s.key: s.name for s in specs}
            with _OUTSIDE:
                for _attempt in range(3):  # an entry changed between computing and reading: again
                    self._fill(query.sources, rules, pieces, horizon)
                    rows = self.state.busy_far_spans(query, pieces, horizon)
                    if rows is not None:
                        found = [_occurrence(row, names, rules.travel_time) for row in rows]
                        found.sort(key=lambda o: (o.start, o.end, o.source, o.uid))
                        return found
        return self._outside_direct(specs, rules, window, horizon, inside, skip)

    def _fill(
        self, sources: Sequence[str], rules: engine.Rules, pieces: list[FarPiece], horizon: tuple[int, int]
    ) -> None:
        """Compute and store the years' rows of the entries that lack them: each text parsed
        once for all its years, written a few hundred at a time, nothing kept after."""
        wanted: dict[int, tuple[FarItem, list[int]]] = {}
        for year, items in self.state.busy_far_missing(sources, pieces, horizon).items():
            for item in items:
                wanted.setdefault(item.item, (item, []))[1].append(year)
        by_source: dict[str, list[tuple[FarItem, list[int]]]] = {}
        for item, years in wanted.values():
            by_source.setdefault(item.source, []).append((item, years))
        for source, entries in by_source.items():
            for i in range(0, len(entries), FAR_PAGE):
                page = entries[i : i + FAR_PAGE]
                texts = self.upkeep.texts(source, [item.href for item, _years in page])
                computed: dict[int, list[tuple[FarItem, tuple[BusySpan, ...]]]] = {}
                for item, years in page:
                    text = texts.get(item.href)
                    found = (
                        spans.windows_text(text, rules, [far_years.year_bounds(y) for y in years])
                        if text is not None
                        else [() for _ in years]
                    )
                    for year, rows in zip(years, found, strict=True):
                        computed.setdefault(year, []).append((item, rows))
                for year, done in computed.items():
                    self.state.busy_far_put(year, done)

    def _outside_direct(
        self,
        specs: list[SourceSpec],
        rules: engine.Rules,
        window: tuple[int, int],
        horizon: tuple[int, int],
        inside: tuple[int, int],
        skip: frozenset[str],
    ) -> list[engine.BusyOccurrence]:
        """The engine's answer for the parts of the window outside the horizon, from the few
        resources that can hold busy time there; what touches the inside part is the index's.

        One resource at a time: parsed, walked and dropped; and one such query at a time in
        the process (`_OUTSIDE`), holding the texts of the resources it reads. Every
        open-ended series of every mirror can reach past the horizon, and guard checks for
        bookings years ahead once held all of them parsed (per request, and again in the
        engine's memo of recent sources), which took the daemon to 900 MB under 20 writing
        clients; they are CPU work under one interpreter lock, so taking turns costs no time."""
        with _OUTSIDE:
            (a, b), (h0, h1) = window, horizon
            wanted: dict[str, list[str]] = {}
            for source, href in self.state.busy_reaching([s.key for s in specs], a, b, h0, h1):
                wanted.setdefault(source, []).append(href)
            appointments = self.state.appointment_uids() if any(s.mirror for s in specs) else frozenset()
            parts = [(p0, p1) for p0, p1 in ((a, min(b, h0)), (max(a, h1), b)) if p0 < p1]
            out = []
            for spec in specs:
                exclude = frozenset(skip | (appointments if spec.mirror else frozenset()))
                for text in self.upkeep.texts(spec.key, wanted.get(spec.key, [])).values():
                    try:
                        resource = engine.Source(spec.name, [engine.parse_calendar(text)], spec.allday_busy, exclude)
                    except ValueError:
                        continue
                    for p0, p1 in parts:
                        for o in engine.busy_occurrences([resource], from_us(p0), from_us(p1), rules, remember=False):
                            if inside[0] < inside[1] and to_us(o.start) < inside[1] and to_us(o.end) > inside[0]:
                                continue  # the index has it
                            out.append(o)
            out.sort(key=lambda o: (o.start, o.end, o.source, o.uid))
            return out

    def busy(self, start: datetime, end: datetime) -> list[Interval]:
        """The combined busy time of every source: what `calmirror availability` shows."""
        return self._merged(start, end) or []

    def busy_in(self, collection: str, start: datetime, end: datetime) -> list[Interval]:
        """The busy time of one collection's own events, by the same rules."""
        return self._merged(start, end, only=collection) or []

    def busy_kinds(
        self, start: datetime, end: datetime, only: str | None = None
    ) -> tuple[list[Interval], list[Interval]]:
        """(firm busy time, time busy only tentatively) of every source, or of one collection's
        own events: what a free-busy answer reports as FBTYPE=BUSY and BUSY-TENTATIVE. The
        second is empty when tentative time does not count (`tentative_busy = false`): it is
        then free, as `availability` and the guard say. Together they are `busy`/`busy_in`."""
        rules = self.rules()
        firm = self._merged(start, end, only=only, rules=replace(rules, tentative_busy=False)) or []
        if not rules.tentative_busy:
            return firm, []
        return firm, subtract(self._merged(start, end, only=only, rules=rules) or [], firm)

    def unavailable(self, start: datetime, end: datetime, only: str | None = None) -> list[Interval]:
        """The part of the busy time that is Outlook's out of office (BUSYSTATUS:OOF): what a
        free-busy answer reports as FBTYPE=BUSY-UNAVAILABLE (RFC 5545 3.2.9)."""
        return self._merged(start, end, only=only, unavailable=True) or []

    def candidate(self, calendar: icalendar.Calendar) -> Candidate:
        """What a guard check of `calendar` asks the index, worked out once per PUT."""
        rules = self.rules()
        own, wanted = engine.candidate_busy(calendar, rules)
        meta = self.state.busy_meta()
        far = False
        if wanted and meta is not None:
            h0, h1 = int(meta["horizon"][0]), int(meta["horizon"][1])
            far = to_us(wanted[0][0]) < h0 or to_us(wanted[-1][1]) > h1
        return Candidate(own, wanted, rules, far)

    def overlaps(self, candidate: Candidate, wait: float = -1) -> list[Interval] | None:
        """Busy time a new (or changed) appointment would collide with; its own
        stored copy does not count. None when the index stayed busy for `wait` seconds."""
        if not candidate.wanted:
            return []
        found = self._merged(
            candidate.wanted[0][0], candidate.wanted[-1][1], skip_uids=candidate.own, wait=wait, rules=candidate.rules
        )
        return None if found is None else intersect(found, candidate.wanted)


@dataclass(frozen=True)
class Candidate:
    """A booking's own UIDs, the busy time it would take, the rules it was worked out under,
    and whether that reaches past the index's horizon (seconds the first time in a year,
    where a check inside it is one range scan)."""

    own: frozenset[str]
    wanted: list[Interval]
    rules: engine.Rules
    far: bool


def _occurrence(row: SpanRow, names: dict[str, str], travel: bool) -> engine.BusyOccurrence:
    source, uid, summary, start, end, before, all_day, kind, approximate = row
    return engine.BusyOccurrence(
        names[source],
        uid,
        summary,
        from_us(start if travel else start + before),
        from_us(end),
        bool(all_day),
        kind == 1,
        bool(approximate),
        kind == KIND_UNAVAILABLE,
    )


FREEBUSY_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
)


def from_vfreebusy(text: bytes | str) -> list[tuple[datetime, datetime]]:
    """Busy time of a VFREEBUSY answer (FBTYPE=BUSY and its tentative/unavailable kinds), merged."""
    import icalendar

    cal = icalendar.Calendar.from_ical(text)
    busy: list[tuple[datetime, datetime]] = []
    for component in cal.walk("VFREEBUSY"):
        props = component.get("FREEBUSY", [])
        for prop in props if isinstance(props, list) else [props]:
            if str(prop.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            for start, end in prop.dt if isinstance(prop.dt, list) else [prop.dt]:
                stop = end if isinstance(end, datetime) else start + end
                busy.append((start.astimezone(UTC), stop.astimezone(UTC)))
    return merge(busy)  # BUSY and BUSY-TENTATIVE lines may touch: one stretch of busy time


def ask_daemon(
    url: str, username: str, password: str, start: datetime, end: datetime, timeout: float = 30.0
) -> list[tuple[datetime, datetime]] | None:
    """The running daemon's answer for `busy/`. None when it cannot answer."""
    from calmirror.local import loopback

    fmt = "%Y%m%dT%H%M%SZ"
    body = FREEBUSY_QUERY.format(start=start.astimezone(UTC).strftime(fmt), end=end.astimezone(UTC).strftime(fmt))
    answer = loopback.ask(
        "REPORT",
        f"{url}{username}/{BUSY}/",
        body=body.encode(),
        auth=(username, password),
        headers={"Depth": "1", "Content-Type": "application/xml"},
        timeout=timeout,
    )
    if answer is None or answer.status != 200:
        return None
    try:
        return from_vfreebusy(answer.body)
    except ValueError:
        return None
