"""Subscribed ICS feeds, mirrored read-only into `feed-<name>/` like an iCloud calendar.

A feed is made to look like one more conflict calendar to the mirror executor: its body is
split into resources by UID (`feedsplit`), each gets its text's digest as ETag, and the
`Mirror` pass does the rest exactly as for iCloud (exact text kept, compatible copies, the
emptied-source rail, counts for `status`). Availability, the guard and free-busy then see it
through the mirror tables without knowing it is a feed.

Polling is one conditional GET per feed and interval; a 304 (or a 200 with the same bytes)
writes nothing but the feed's own schedule. In the daemon, feeds are fetched by a small pool
of workers, so a publisher that hangs until its timeout holds one worker, not every feed; the
fetches overlap, the mirror writes take turns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from calmirror import logs
from calmirror.config import Settings
from calmirror.errors import FeedError, RemoteError, Unavailable
from calmirror.feed_mirror import FeedMirror, calendar_of
from calmirror.feedsplit import FeedDiff, body_digest, diff_feed, etag_of, split_feed
from calmirror.local.layout import feed_id, is_feed_id, mirror_name
from calmirror.local.store import LocalStore
from calmirror.mirror_lock import one_pass_at_a_time
from calmirror.model import FeedRow
from calmirror.remote import FetchedItem, SyncChanges
from calmirror.remote.feed import FeedFetcher
from calmirror.state import State

log = logging.getLogger("calmirror.feeds")
FEED_WORKERS = 4  # feeds fetched at once: enough that a few hanging publishers block nothing
MAX_BACKOFF_S = 6 * 3600.0  # a feed failing again and again is still tried four times a day

EMPTIED = (
    "the feed lists no events; its mirror was kept (run `calmirror feeds poll {name} --accept-empty` if that is right)"
)


class FeedListing:
    """A split feed in the shape of a CalDAV calendar: one full listing, and fetches from memory."""

    def __init__(self, calendar_id: str, resources: dict[str, str]) -> None:
        self.texts = {f"{calendar_id}/{name}": text for name, text in resources.items()}
        self.etags = {href: etag_of(text) for href, text in self.texts.items()}

    def sync(self, calendar_url: str, token: str | None) -> SyncChanges:
        return SyncChanges(token="", changed=dict(self.etags), deleted=[], full=True)

    def fetch(
        self, calendar_url: str, hrefs_wanted: Sequence[str], *, batch: int = 100
    ) -> tuple[list[FetchedItem], list[str]]:
        items = [FetchedItem(h, self.etags[h], self.texts[h]) for h in hrefs_wanted if h in self.texts]
        return items, [h for h in hrefs_wanted if h not in self.texts]


@dataclass
class FeedReport:
    name: str
    outcome: str = "unchanged"  # unchanged | changed | held | failed
    requests: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    events: int = 0  # resources in the feed now
    ignored: int = 0  # components that are not events (VTODO, …)
    error: str | None = None
    copies: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.error:
            return f"feed {self.name}: failed: {self.error}"
        if self.outcome == "held":
            return f"feed {self.name}: " + EMPTIED.format(name=self.name)
        if self.outcome == "unchanged":
            return f"feed {self.name}: unchanged"
        return f"feed {self.name}: {self.added} added, {self.updated} updated, {self.deleted} deleted"


class FeedPoller:
    """Polls feeds when due and mirrors what changed. Each thread fetches over its own
    session (a `requests` session is not thread-safe); the mirror writes take turns."""

    def __init__(self, state: State, store: LocalStore, settings: Settings, *, workers: int = FEED_WORKERS) -> None:
        self.state, self.store = state, store
        self.mirror = FeedMirror(state, store, settings)
        self.workers = max(1, workers)
        self._local = threading.local()
        self._fetchers: set[FeedFetcher] = set()
        self._limits = 0  # bumped when the settings change: each thread makes its fetcher again
        self._lock = threading.Lock()
        self._apply = threading.Lock()  # one feed's mirror pass at a time
        self._in_flight: set[str] = set()

    @property
    def settings(self) -> Settings:
        return self.mirror.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        # Called from the daemon's main thread on reload: each worker replaces its own fetcher
        # (maybe mid-request now) at its next poll.
        self.mirror.settings = settings
        with self._lock:
            self._limits += 1

    def fetcher(self) -> FeedFetcher:
        held: tuple[int, FeedFetcher] | None = getattr(self._local, "fetcher", None)
        with self._lock:
            limits = self._limits
        if held is not None and held[0] == limits:
            return held[1]
        self._close_own()
        f = self.settings.feeds
        made = FeedFetcher(max_bytes=f.max_mb * 1024 * 1024, timeout=f.timeout)
        self._local.fetcher = (limits, made)
        with self._lock:
            self._fetchers.add(made)
        return made

    def _close_own(self) -> None:
        held: tuple[int, FeedFetcher] | None = getattr(self._local, "fetcher", None)
        if held is None:
            return
        self._local.fetcher = None
        with self._lock:
            self._fetchers.discard(held[1])
        held[1].close()

    def close(self) -> None:
        """Close this thread's session and any left by workers that have ended."""
        self._close_own()
        with self._lock:
            left, self._fetchers = list(self._fetchers), set()
        for fetcher in left:
            fetcher.close()

    # --- which feeds -------------------------------------------------------------------

    def prepare(self) -> None:
        """Create every feed's (possibly empty) mirror, so none answers 404 before its first poll."""
        for feed in self.state.feeds():
            self.mirror.ensure_mirror(calendar_of(feed))

    def remove(self, feed: FeedRow) -> None:
        calendar_id = feed_id(feed.name)
        # Not while a poll of it writes its mirror, here or in another process (the daemon's,
        # when `feeds remove` runs beside it).
        with self._apply, one_pass_at_a_time(self.state.path.parent, calendar_id, feed.name):
            self.store.delete_mirror(calendar_id)
            self.state.forget_mirror(calendar_id)  # its map, texts and busy index, then the feed itself
            self.state.forget_feed(feed.name, calendar_id)
        self.mirror.on_change(mirror_name(calendar_id))

    def prune_unsubscribed(self) -> list[str]:
        """Drop what is left of feeds no longer subscribed: `feeds remove` in another process
        while a poll here was writing that feed's mirror. Waits for that write to end."""
        subscribed = {feed_id(f.name) for f in self.state.feeds()}
        with self._apply:
            kept = {m.calendar_id for m in self.state.mirrors()} | set(self.store.list_mirrors())
            gone = sorted(c for c in kept if is_feed_id(c) and c not in subscribed)
            for calendar_id in gone:
                with one_pass_at_a_time(self.state.path.parent, calendar_id, calendar_id):
                    self.store.delete_mirror(calendar_id)
                    self.state.forget_mirror(calendar_id)
        for calendar_id in gone:
            log.info("feed mirror %s/ removed: the feed is no longer subscribed", mirror_name(calendar_id))
            self.mirror.on_change(mirror_name(calendar_id))
        return gone

    def due(self, now: float) -> list[FeedRow]:
        with self._lock:
            busy = set(self._in_flight)
        return [f for f in self.state.feeds() if f.next_poll <= now and f.name not in busy]

    def poll_many(
        self, feeds: Sequence[FeedRow], *, accept_empty: frozenset[str] = frozenset(), now: float | None = None
    ) -> list[FeedReport]:
        """Poll `feeds` at once over the pool's workers (`calmirror sync`, `feeds poll`), as the
        daemon does: a publisher that hangs until its timeout holds one worker while the others'
        feeds are fetched and mirrored. The reports come in the order of `feeds`."""
        now = time.time() if now is None else now

        def one(feed: FeedRow) -> FeedReport:
            return self.poll(feed, accept_empty=feed.name in accept_empty, now=now)

        if len(feeds) <= 1:
            return [one(feed) for feed in feeds]
        with ThreadPoolExecutor(min(self.workers, len(feeds)), thread_name_prefix="feeds-cli") as pool:
            return list(pool.map(one, feeds))  # each thread's fetcher is closed by `close`

    def seconds_to_next(self, now: float) -> float | None:
        feeds = self.due(float("inf"))  # those not being polled right now
        return None if not feeds else max(0.0, min(f.next_poll for f in feeds) - now)

    def run(self, stopping: threading.Event, wake: threading.Event) -> None:
        """The daemon's feed loop: hand what is due to the workers, sleep until the next one
        is due (or a wake: a reload, a finished poll). A feed is never polled twice at once."""
        jobs: queue.Queue[str] = queue.Queue()
        for n in range(self.workers):
            worker = threading.Thread(
                target=self._work, args=(jobs, stopping, wake), name=f"feeds-{n + 1}", daemon=True
            )
            worker.start()
        subscribed: set[str] | None = None
        while not stopping.is_set():
            try:
                names = {f.name for f in self.state.feeds()}
                if names != subscribed:  # at start, and after a feed came or went
                    self.prune_unsubscribed()
                    subscribed = names
                for feed in self.due(time.time()):
                    with self._lock:
                        self._in_flight.add(feed.name)
                    jobs.put(feed.name)
            except Exception:  # the state could not be read this once: try again at the next wake
                log.exception("feed scheduling failed")
            wait = self.seconds_to_next(time.time())
            wake.wait(60.0 if wait is None else min(60.0, max(0.2, wait)))
            wake.clear()
        self.close()

    def _work(self, jobs: queue.Queue[str], stopping: threading.Event, wake: threading.Event) -> None:
        """One worker: poll the feeds it is handed, each with its own timeout and schedule.
        A worker still waiting on a publisher when the daemon stops is left behind (a daemon
        thread); nothing it would write is lost, the next start polls again."""
        try:
            while not stopping.is_set():
                try:
                    name = jobs.get(timeout=0.5)
                except queue.Empty:
                    continue
                try:
                    feed = self.state.feed(name)  # removed meanwhile: nothing to do
                    if feed is not None and not stopping.is_set():
                        self.poll(feed)
                except Exception:  # one feed's surprise must not end polling for the process
                    if not stopping.is_set():
                        log.exception("feed %s: poll failed", name)
                finally:
                    with self._lock:
                        self._in_flight.discard(name)
                    wake.set()  # its next poll time is known now
        finally:
            self._close_own()

    # --- one feed ----------------------------------------------------------------------

    def poll(
        self, feed: FeedRow, *, accept_empty: bool = False, now: float | None = None, trial: bool = False
    ) -> FeedReport:
        """One conditional GET and whatever changed. `trial`: the first poll of `feeds add`,
        whose caller reports a failure itself (and forgets the feed), so none is logged."""
        now = time.time() if now is None else now
        report = FeedReport(feed.name)
        fetcher = self.fetcher()
        conditional = not accept_empty and not feed.held_empty
        try:
            fetched = fetcher.fetch(
                feed.url,
                etag=feed.etag if conditional else None,
                last_modified=feed.last_modified if conditional else None,
                allow_http=feed.allow_http,
            )
        except RemoteError as exc:
            return self._failed(feed, report, exc, now, trial)
        report.requests = fetched.requests
        if feed.last_error:  # it failed before (or was held) and answered: the backoff starts again
            self.state.feed_answered(feed.name)
        self.state.count_feed_requests(feed.name, fetched.requests)
        floor = max(feed.interval, fetched.max_age or 0.0)
        schedule = {"next_poll": now + floor, "last_poll": now}
        validators = {
            "etag": fetched.etag or feed.etag,
            "last_modified": fetched.last_modified or feed.last_modified,
        }
        if fetched.body is None or (conditional and body_digest(fetched.body) == feed.digest):
            self.state.update_feed(feed.name, **schedule, **validators, last_error=None)
            log.debug("feed %s: unchanged", feed.name)
            return report
        with self._apply:
            if self.state.feed(feed.name) is None:  # removed while it was being fetched
                return report
            return self._apply_body(feed, report, fetched.body, schedule, validators, accept_empty, now, trial)

    def _apply_body(
        self,
        feed: FeedRow,
        report: FeedReport,
        body: str,
        schedule: dict[str, float],
        validators: dict[str, str | None],
        accept_empty: bool,
        now: float,
        trial: bool,
    ) -> FeedReport:
        split = split_feed(body)
        if split.calendars == 0:
            not_ical = FeedError("the answer is not an iCalendar feed", url=feed.url)
            return self._failed(feed, report, not_ical, now, trial)
        report.events, report.ignored = len(split.resources), split.ignored
        calendar_id = feed_id(feed.name)
        change = self._diff(calendar_id, split.resources)
        if change.empty and not accept_empty:
            self.state.update_feed(
                feed.name, **schedule, **validators, digest=body_digest(body), last_error=None, held_empty=False
            )
            return report
        self.mirror.details[calendar_id] = feed.privacy
        try:
            synced = self.mirror.sync_calendar(
                FeedListing(calendar_id, split.resources), calendar_of(feed), accept_empty=accept_empty
            )
        except RemoteError as exc:  # pragma: no cover - the listing is in memory
            return self._failed(feed, report, exc, now, trial)
        if synced.held_empty:
            message = EMPTIED.format(name=feed.name)
            self.state.update_mirror(calendar_id, last_error=message)
            self.state.update_feed(feed.name, **schedule, held_empty=True, last_error=message)
            self.state.record_event("warning", "feed", f"{feed.name}: {message}")
            report.outcome = "held"
            log.warning("feed %s: %s", feed.name, message)
            return report
        report.outcome = "changed"
        report.added, report.updated, report.deleted = synced.added, synced.updated, synced.deleted
        report.copies = synced.copies
        self.state.update_feed(
            feed.name, **schedule, **validators, digest=body_digest(body), last_error=None, held_empty=False
        )
        log.info("%s", report.summary())
        return report

    def _diff(self, calendar_id: str, resources: dict[str, str]) -> FeedDiff:
        prefix = calendar_id + "/"
        known = {href.removeprefix(prefix): entry.etag for href, entry in self.state.mirror_items(calendar_id).items()}
        return diff_feed(known, resources)

    def _failed(
        self, feed: FeedRow, report: FeedReport, exc: RemoteError, now: float, trial: bool = False
    ) -> FeedReport:
        """The mirror stays as it was; the next try waits the interval, doubled for each
        failure in a row (up to `MAX_BACKOFF_S`, or the interval when that is longer), and
        longer still when the server said so (Retry-After). The count is kept in the state
        database, so a daemon started again goes on backing off."""
        failures = self.state.feed_failed(feed.name, now)  # in the state: a restart keeps backing off
        wait = min(feed.interval * 2 ** min(failures - 1, 16), max(feed.interval, MAX_BACKOFF_S))
        if isinstance(exc, Unavailable) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        report.outcome, report.error = "failed", exc.message
        report.requests = max(report.requests, 1)
        self.state.count_feed_requests(feed.name, report.requests)
        self.state.update_feed(feed.name, next_poll=now + wait, last_poll=now, last_error=exc.message[:300])
        self.state.update_mirror(feed_id(feed.name), last_error=exc.message[:300], last_attempt=now)
        if not trial:
            self.state.record_event("error", "feed", f"{feed.name}: {exc.message}")
            log.error("feed %s: %s", feed.name, exc.message, extra=logs.REPORTED)
        return report


def parse_interval(text: str) -> float:
    """`15m`, `1h`, `90s`, `1d` or plain seconds; at least a minute (feeds are not chat)."""
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an interval (use 15m, 1h, 90s)") from None
    if not seconds >= 60:
        raise ValueError(f"{text!r}: feeds are polled at most once a minute")
    return seconds


def describe_interval(seconds: float) -> str:
    """As `--interval` takes it (15m, 1h30m, 1d), not as Python prints a timedelta (0:15:00)."""
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"
