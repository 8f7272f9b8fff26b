"""The plain data calmirror reasons about: accounts, calendars, map entries, appointments, outbox rows.

No I/O and no third-party imports, so the pure planners and the availability engine can take
these types without pulling in SQLite, HTTP or Radicale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

#: What the local mirror holds for one iCloud resource. `exact`: iCloud's text (marked, and
#: reduced to busy time when the calendar says so). `compatible`: a rewrite Radicale stores
#: with the same busy time (`compat.py`). `withheld`: Radicale refused even that, so clients
#: do not see it; busy time still counts it, from the exact text calmirror keeps.
CopyKind = Literal["exact", "compatible", "withheld"]
COPY_KINDS: tuple[CopyKind, ...] = ("exact", "compatible", "withheld")


#: The first account has no name: its calendars keep their bare ids, its mirrors their
#: `icloud-<slug>/` names and its state its rows, so a home from before a second account
#: existed needs no migration. Addresses and listings spell it `default`.
PRIMARY = ""
PRIMARY_SPELLING = "default"


@dataclass(frozen=True)
class Account:
    apple_id: str  # the Apple ID, or the user name on another CalDAV server
    server: str
    principal_url: str
    home_url: str
    connected_at: float
    name: str = PRIMARY

    @property
    def label(self) -> str:
        return self.name or PRIMARY_SPELLING


def scoped_id(account: str, segment: str) -> str:
    """The calendar id calmirror keeps: the remote id for the first account, `work/<id>` for
    the account named `work`, so ids (keys of links, conflicts, mirrors and every table keyed
    by calendar) stay unique across accounts that each have a calendar called `home`."""
    return f"{account}/{segment}" if account else segment


def account_of(calendar_id: str) -> str:
    """The name of the account a calendar id belongs to (`PRIMARY` for a bare id)."""
    name, slash, _ = calendar_id.partition("/")
    return name if slash else PRIMARY


ComponentKind = Literal["VEVENT", "VTODO", "VJOURNAL"]
COMPONENT_KINDS: tuple[ComponentKind, ...] = get_args(ComponentKind)


def component_kinds(names: Iterable[str]) -> tuple[ComponentKind, ...]:
    """The calendar component kinds among `names`, in a fixed order; unknown names are dropped."""
    wanted = {name.strip().upper() for name in names}
    return tuple(kind for kind in COMPONENT_KINDS if kind in wanted)


@dataclass(frozen=True)
class CalendarRow:
    """One iCloud calendar: what the remote lists and what the state keeps (the same type)."""

    id: str  # decoded last path segment: "home", an uppercase UUID, 64 hex
    url: str  # canonical absolute URL with a trailing slash
    name: str  # displayname, or the id when the server gives none
    color: str | None  # Apple calendar-color ("#FF2968FF")
    components: tuple[ComponentKind, ...]  # all three when the server does not say
    writable: bool  # write, write-content or all among the user's privileges (True when not reported)

    @property
    def is_event_calendar(self) -> bool:
        return "VEVENT" in self.components


@dataclass(frozen=True)
class MirrorEntry:
    """One mirrored iCloud resource. `body` is iCloud's exact text; it is carried only on
    the way into the state database (reading the map back leaves it out: a pass over
    10,000 events must not hold every text)."""

    href: str
    etag: str
    uid: str
    local_href: str
    copy: CopyKind = "exact"
    reason: str = ""  # why the copy is not exact
    body: str | None = None
    horizon: str = ""  # the horizon a compatible copy was derived for (ISO date), else ""

    @property
    def in_mirror(self) -> bool:
        """Whether the local mirror holds a file for it."""
        return self.copy != "withheld"


@dataclass(frozen=True)
class MirrorRow:
    """One mirrored iCloud calendar as the state database records it."""

    calendar_id: str
    slug: str | None = None
    sync_token: str | None = None
    last_sync: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    item_count: int = 0
    skipped: int = 0  # unreadable objects
    held_empty: bool = False
    generation: int = 0


@dataclass(frozen=True)
class Appointment:
    uid: str
    local_href: str | None
    local_etag: str | None
    remote_calendar: str | None
    remote_href: str | None
    remote_etag: str | None
    pushed_etag: str | None

    @property
    def create_unconfirmed(self) -> bool:
        """A create was sent to `remote_href` but its answer never came: iCloud may hold the
        appointment or not. The href is recorded before the PUT so that a later local
        deletion still reaches the copy a lost answer hid."""
        return self.remote_href is not None and self.remote_etag is None and self.pushed_etag is None


@dataclass(frozen=True)
class OutboxRow:
    uid: str
    collection: str
    seq: int
    state: OutboxState
    attempts: int
    next_attempt: float
    last_error: str | None
    enqueued_at: float


#: What one push does in iCloud. `cancel` keeps the event there with STATUS:CANCELLED (a
#: local deletion under `[push] cancel = "mark-cancelled"`); `hold` waits for the user.
PushKind = Literal["create", "update", "cancel", "delete", "forget", "nothing", "refuse", "hold"]

#: An outbox row's life: `pending` until claimed, `in_flight` while pushed, then `done`, or
#: `failed` when only the user can fix it (`calmirror retry`).
OutboxState = Literal["pending", "in_flight", "done", "failed"]
OUTBOX_STATES: tuple[OutboxState, ...] = ("pending", "in_flight", "done", "failed")

#: `[push] linked`: whether changes made in iCloud to pushed appointments flow back into
#: `appointments/` ("two-way") or are only counted and listed ("one-way").
LinkedMode = Literal["two-way", "one-way"]
LINKED_MODES: tuple[LinkedMode, ...] = ("two-way", "one-way")


@dataclass(frozen=True)
class RemoteVersion:
    """iCloud's version of a pushed appointment that differs from the last agreed one.

    `body` None: deleted in iCloud. `applying`: the text being written into `appointments/`
    (two-way), kept until the write is recorded so a crash in between is finished at the
    next start instead of being pushed back.
    """

    uid: str
    calendar_id: str
    href: str
    etag: str
    body: str | None
    seen_at: float
    applying: str | None = None

    @property
    def deleted(self) -> bool:
        return self.body is None


@dataclass(frozen=True)
class VersionConflict:
    """Both sides changed a pushed appointment since they last agreed; the local version won
    in iCloud, and iCloud's (`remote_body`, None when it was deleted there) is kept here."""

    id: int
    uid: str
    local_body: str
    remote_body: str | None
    reason: str
    ts: float


@dataclass(frozen=True)
class EventRow:
    """One line of `status`'s recent problems."""

    id: int
    ts: float
    level: str
    kind: str
    message: str


# --- the time-range index of mirrors (`state/ranges.py`, `local/range_query.py`) -----------

#: What identifies one version of an item file without reading it: inode, size, mtime and
#: ctime in nanoseconds (a rename or rewrite changes the inode and ctime).
FileStamp = tuple[int, int, int, int]


@dataclass(frozen=True)
class ItemRange:
    """One item of a collection as Radicale's item cache describes it, with the stamp of the
    file it was read from. `trusted` is False while the file was too new to trust its stamp
    (a rewrite in the same clock tick could keep it): such rows are checked again."""

    href: str
    stamp: FileStamp
    trusted: bool
    etag: str
    component: str
    start: int
    end: int


@dataclass(frozen=True)
class Occurrences:
    """The time ranges Radicale's own filter visits for one item version (`etag`), recorded
    completely for every window inside [`low`, `high`] (POSIX seconds). `exact` is False
    when the recording cannot stand in for Radicale's filter (an error, a series whose
    starts are not in order, a time with a fraction of a second): Radicale then decides."""

    etag: str
    low: int
    high: int
    exact: bool
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class RangeCandidate:
    """An item whose cached time range overlaps a query window. `easy`: Radicale's prefilter
    alone accepts it; `decided`: what its recorded occurrences say about the window (None when
    none are recorded that cover it)."""

    href: str
    easy: bool
    decided: bool | None


@dataclass(frozen=True)
class GuardNote:
    """A double booking the guard let through (mode "warn"): what status and the page show."""

    summary: str
    start: str  # ISO, UTC
    end: str
    ts: float  # when the guard saw it


# --- the busy index ------------------------------------------------------------------------------

#: Busy-index source keys. Local collections are keyed by their collection name; every kind of
#: mirror (iCloud calendars, feeds, further accounts) by its calendar id in the exact-text store.
BUSY_PUSHED = "pushed-in-icloud"  # iCloud's differing versions of pushed appointments
_MIRROR_KEY = "mirror:"
#: Spans shorter than this (10 days, in microseconds) are found by a range scan on their start.
BUSY_SHORT_US = 10 * 86_400 * 1_000_000
KIND_UNAVAILABLE = 2  # a span row's kind column (`tentative`): Outlook's out of office


def busy_mirror_key(calendar_id: str) -> str:
    """The busy-index source key of the mirror of `calendar_id`."""
    return _MIRROR_KEY + calendar_id


def busy_mirror_id(source: str) -> str | None:
    """The calendar id behind a mirror's source key; None for other sources."""
    return source[len(_MIRROR_KEY) :] if source.startswith(_MIRROR_KEY) else None


@dataclass(frozen=True, slots=True)
class BusySpan:
    """One busy occurrence as the index stores it (UTC microseconds since the epoch).

    `start` already includes the travel time before it (`travel`, 0 for all-day events), so
    the query drops it when the user switches travel time off. `maybe` marks an occurrence
    that is busy only when tentative time counts (STATUS or the user's own PARTSTAT);
    `tentative` is STATUS/BUSYSTATUS alone, as shown to users; `unavailable` is Outlook's
    out of office (FBTYPE=BUSY-UNAVAILABLE in free-busy answers). The two share one column,
    the row's kind (0 busy, 1 tentative, 2 unavailable).
    """

    uid: str
    summary: str
    start: int
    end: int
    travel: int
    all_day: bool
    tentative: bool
    maybe: bool
    approximate: bool
    unavailable: bool = False


@dataclass(frozen=True, slots=True)
class IndexedItem:
    """One resource's entry in the busy index: its text's digest, the UTC bounds of
    everything it can ever occupy (`hi` None: a rule without end; both None: unreadable),
    and its busy occurrences over the index's horizon."""

    digest: str
    lo: int | None
    hi: int | None
    spans: tuple[BusySpan, ...]

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as plain tuples: a check worker sends a mirror batch's entries back to the
        pass (about 2,400 spans per 100 Apple-shaped events), and the dataclasses' own state
        protocol (`fields()` per span one way, a frozen `__setattr__` per field the other)
        cost 17 ms per batch, 17 s of CPU at 100,000 events; this takes 4."""
        rows = tuple(
            (s.uid, s.summary, s.start, s.end, s.travel, s.all_day, s.tentative, s.maybe, s.approximate, s.unavailable)
            for s in self.spans
        )
        return (_indexed_item, (self.digest, self.lo, self.hi, rows))


_SPAN_SETTERS = tuple(getattr(BusySpan, name).__set__ for name in BusySpan.__slots__)
_ITEM_SETTERS = tuple(getattr(IndexedItem, name).__set__ for name in IndexedItem.__slots__)


def _indexed_item(digest: str, lo: int | None, hi: int | None, rows: tuple[tuple[object, ...], ...]) -> IndexedItem:
    """`IndexedItem.__reduce__`'s other half: the entry and its spans filled slot by slot, as
    `__init__` would (neither has a `__post_init__`), without its per-field frozen checks;
    like the dataclasses' own unpickling, it calls no `__init__`."""
    spans = []
    for row in rows:
        span = object.__new__(BusySpan)
        for setter, value in zip(_SPAN_SETTERS, row, strict=True):
            setter(span, value)
        spans.append(span)
    item = object.__new__(IndexedItem)
    for setter, value in zip(_ITEM_SETTERS, (digest, lo, hi, tuple(spans)), strict=True):
        setter(item, value)
    return item


@dataclass(frozen=True)
class BusyBatch:
    """Index entries computed, before a transaction, for the horizon and busy rules they
    assume; the writer drops them if the index moved on meanwhile."""

    fingerprint: str
    horizon: tuple[int, int]
    items: dict[str, IndexedItem]


@dataclass(frozen=True)
class FeedRow:
    """A subscribed ICS feed: where it is, how often and how it is mirrored, and what the
    last fetch left (validators for a conditional GET, when to poll next, what went wrong)."""

    name: str  # short name; the mirror is `feed-<name>/`, the calendar id `feed:<name>`
    url: str  # normalised: https:// or (only when allowed) http://
    display: str  # the name shown to clients
    interval: float  # seconds between polls, before the server's floors
    privacy: str  # "full" | "busy"
    allow_http: bool = False
    etag: str | None = None
    last_modified: str | None = None
    digest: str | None = None  # of the last body applied: a 200 with the same bytes changes nothing
    next_poll: float = 0.0
    last_poll: float | None = None
    last_error: str | None = None
    held_empty: bool = False
    requests: int = 0  # HTTP requests made for this feed, ever (redirect hops count)


@dataclass(frozen=True)
class FeedFetched:
    """One conditional GET of a feed: `body` is None when the server answered 304."""

    body: str | None
    etag: str | None
    last_modified: str | None
    max_age: float | None  # Cache-Control max-age: a floor on the polling interval
    requests: int  # HTTP requests made (1 plus redirect hops)
    size: int  # bytes received (as sent, before decompression)
