"""Keeping the busy index current: which sources exist, and bringing each one's entries up to
date with the texts it holds, touching only what changed.

Writers: a mirror batch carries its entries into the state database's own transaction
(`mirror_batch`); `appointments/` and `blocked/` follow Radicale's sync token (after a quick
look at the folder's modification time, so an unchanged collection costs one `stat`);
iCloud's differing versions of pushed appointments are compared by digest (they are few).
At start, `reconcile` compares every entry's digest with its text and recomputes only the
ones that differ, are missing or are extra. When the busy rules that cannot be query-time
columns change (`spans.fingerprint`), the index is rebuilt once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from calmirror.availability import engine, spans
from calmirror.config import Settings
from calmirror.local.layout import APPOINTMENTS, BLOCKED, mirror_name
from calmirror.local.store import LocalStore
from calmirror.me import my_addresses
from calmirror.model import BUSY_PUSHED, BusyBatch, BusySpan, busy_mirror_id, busy_mirror_key
from calmirror.state import State

log = logging.getLogger("calmirror.busy")
PUSHED_IN_ICLOUD = "appointments as in iCloud"
PAGE = 500  # entries computed and written per transaction when many change at once
SETTLE_NS = 2_000_000_000  # a folder changed this recently may change again within the same tick


@dataclass(frozen=True)
class SourceSpec:
    """One source of busy time: its index key, the name occurrences carry, its collection
    (None for iCloud's versions of pushed appointments), and its switches."""

    key: str
    name: str
    collection: str | None
    allday_busy: bool
    mirror: bool  # events whose UID is a local appointment do not count (the local one does)


class BusyUpkeep:
    def __init__(
        self,
        store: LocalStore,
        state: State,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        notified: bool = False,
    ) -> None:
        self.store, self.state, self.settings, self.clock = store, state, settings, clock
        self._rules: tuple[int, Settings, engine.Rules] | None = None  # see `rules`
        self.lock = threading.RLock()
        self._stamps: dict[str, int] = {}  # collection -> folder stamp when last followed
        # The daemon hears of every change to a local collection (its server's writes, the
        # watcher's): it follows one only when told, not at every query after a write.
        self.notified = notified
        self._dirty: set[str] = {APPOINTMENTS, BLOCKED}
        self.computed = 0  # texts parsed to compute entries, for tests and benchmarks
        # Calls of `ensure` are numbered as they arrive; a run covers every call that arrived
        # before it began (see `ensure`): (the last such number, the rules' fingerprint).
        self._arrivals = itertools.count()
        self._covered: tuple[int, str] = (-1, "")
        self.runs = 0  # upkeep runs that did the work, for tests

    def rules(self) -> engine.Rules:
        """The busy rules: the settings' switches and the user's addresses (`me`). Worked out
        again only when some connection committed or the settings were replaced since (every
        guard check and free-busy REPORT asks; reading the accounts was a fifth of a REPORT)."""
        version = self.state.data_version()
        kept = self._rules
        if kept is not None and kept[0] == version and kept[1] is self.settings:
            return kept[2]
        a = self.settings.availability
        me = my_addresses(self.state, self.settings)  # invitations to any account, under any alias, are yours
        rules = engine.Rules(tz=a.zone, me=me, tentative_busy=a.tentative_busy, travel_time=a.travel_time)
        self._rules = (version, self.settings, rules)
        return rules

    def sources(self) -> list[SourceSpec]:
        a = self.settings.availability
        out = [
            SourceSpec(APPOINTMENTS, "appointments", APPOINTMENTS, a.allday_busy, False),
            SourceSpec(BLOCKED, "blocked", BLOCKED, a.allday_busy, False),
        ]
        for row in self.state.mirrors():
            per = self.settings.calendar(row.calendar_id).allday_busy
            name = mirror_name(str(row.slug))
            out.append(
                SourceSpec(busy_mirror_key(row.calendar_id), name, name, a.allday_busy if per is None else per, True)
            )
        out.append(SourceSpec(BUSY_PUSHED, PUSHED_IN_ICLOUD, None, a.allday_busy, False))
        return out

    def build_due(self) -> str | None:
        """Why the next upkeep indexes every source anew, or None when it only follows changes:
        a command can say so first, since that takes seconds per thousand events."""
        meta = self.state.busy_meta()
        if meta is None:
            return "built for the first time"
        if meta["fingerprint"] != spans.fingerprint(self.rules()):
            return "rebuilt (calmirror was upgraded, or availability.timezone or your addresses changed)"
        return None if meta.get("complete") else "completed (its last build did not finish)"

    # --- computing entries -----------------------------------------------------------------

    def batch(
        self, texts: dict[str, str], meta: dict[str, Any] | None = None, known: BusyBatch | None = None
    ) -> BusyBatch | None:
        """Entries for `texts` under the index's current horizon and rules; None when the index
        is not built for the current rules (the next upkeep rebuilds it). `known`: entries
        already computed elsewhere (a check worker), used where they are of the same text,
        horizon and rules."""
        rules = self.rules()
        meta = self.state.busy_meta() if meta is None else meta
        fingerprint = spans.fingerprint(rules)
        if meta is None or meta["fingerprint"] != fingerprint:
            return None
        horizon = (int(meta["horizon"][0]), int(meta["horizon"][1]))
        self.computed += len(texts)
        ready = (
            known.items if known is not None and (known.fingerprint, known.horizon) == (fingerprint, horizon) else {}
        )
        items = {}
        for href, text in texts.items():
            entry = ready.get(href)
            items[href] = (
                entry
                if entry is not None and entry.digest == spans.digest(text)
                else spans.index_text(text, rules, horizon)
            )
        return BusyBatch(fingerprint, horizon, items)

    def mirror_batch(self, calendar_id: str, texts: dict[str, str], known: BusyBatch | None = None) -> BusyBatch | None:
        """Entries of one mirror batch, computed before its transaction (see `apply_mirror_map`)."""
        return self.batch(texts, known=known) if texts else None

    def batch_job(self) -> tuple[str, tuple[int, int], engine.Rules] | None:
        """(fingerprint, horizon, rules) entries are computed under now, for a check worker to
        compute a mirror batch's beside its check; None while the index is not built for the
        current rules (no entries are then computed at all)."""
        rules = self.rules()
        meta = self.state.busy_meta()
        fingerprint = spans.fingerprint(rules)
        if meta is None or meta["fingerprint"] != fingerprint:
            return None
        return fingerprint, (int(meta["horizon"][0]), int(meta["horizon"][1])), rules

    def texts(self, source: str, hrefs: list[str]) -> dict[str, str]:
        """The current texts of some entries of a source (missing ones left out)."""
        calendar_id = busy_mirror_id(source)
        if calendar_id is not None:
            return self.state.mirror_texts_of(calendar_id, hrefs)
        if source == BUSY_PUSHED:
            wanted = set(hrefs)
            return {v.uid: v.body for v in self.state.differing_remote_versions() if v.uid in wanted and v.body}
        try:
            found = self.store.items_named(source, hrefs)
        except Exception as exc:  # a collection that cannot be read holds no busy time now
            log.debug("busy: %s unreadable: %s", source, exc)
            return {}
        return {href: text for href, text in found.items() if text is not None}

    def _write(self, source: str, texts: dict[str, str], deletes: Iterable[str] = (), token: str | None = None) -> None:
        """Compute and write entries a page at a time."""
        pending = list(texts.items())
        deletes = list(deletes)
        for i in range(0, max(len(pending), 1), PAGE):
            batch = self.batch(dict(pending[i : i + PAGE]))
            if batch is None:
                return
            last = i + PAGE >= len(pending)
            self.state.busy_write(
                source,
                batch,
                deletes if i == 0 else (),
                token=(source, token) if token is not None and last else None,
            )

    # --- upkeep ------------------------------------------------------------------------------

    def ensure(self, wait: float = -1, rules: engine.Rules | None = None) -> bool:
        """Bring the index up to date (cheap when nothing changed); False when another thread
        holds it for longer than `wait` seconds (a rebuild at start). `rules`: the caller's,
        when it has just worked them out (each costs reading the accounts).

        A call that waited for the lock while another thread brought the index up to date
        returns at once when that run began after this call arrived (and under the same
        rules): the run saw every change announced before it. Under 20 writing clients each
        guard check and free-busy REPORT otherwise ran the whole upkeep again in turn, one
        behind the other, and the lock was held most of the time."""
        arrived = next(self._arrivals)
        if not self.lock.acquire(timeout=wait):
            return False
        try:
            fingerprint = spans.fingerprint(self.rules() if rules is None else rules)
            if self._covered[0] >= arrived and self._covered[1] == fingerprint:
                return True
            covers = next(self._arrivals)  # every call numbered before this one
            self.runs += 1
            meta = self.state.busy_meta()
            fresh = meta is None or meta["fingerprint"] != fingerprint
            rebuilt = meta is None or fresh or not meta.get("complete")
            if fresh:
                self._rebuild()
            elif rebuilt:
                self._finish_build()
            for collection in (APPOINTMENTS, BLOCKED):
                self._follow(collection)
            self._follow_pushed()
            self._recompute_stale()
            if rebuilt:
                self.state.busy_mark_complete()
            self._covered = (covers, fingerprint)
            return True
        finally:
            self.lock.release()

    def _rebuild(self) -> None:
        if self.state.busy_meta() is not None:  # a new home's first build is over at once
            log.info("the busy index is being %s; busy time waits for it", self.build_due() or "rebuilt")
        began = time.monotonic()
        rules = self.rules()
        self.state.busy_reset(spans.fingerprint(rules), spans.horizon_at(self.clock()))
        self._stamps.clear()
        self._dirty.update((APPOINTMENTS, BLOCKED))
        for spec in self.sources():
            calendar_id = busy_mirror_id(spec.key)
            if calendar_id is not None:
                self._reconcile_mirror(spec.key, calendar_id)
        log.info("busy index built in %.1f s", time.monotonic() - began)

    def _finish_build(self) -> None:
        """A build under the current rules that did not finish (a daemon stopped during it) or
        that mirror passes of another process filled in (a `calmirror sync` before the first
        `calmirror run`): the entries already written stay, and only the missing or changed
        ones are computed. Starting afresh would parse every mirrored event again, minutes at
        100,000 events, while each client PUT waits on the guard."""
        began = time.monotonic()
        self._stamps.clear()
        for spec in self.sources():
            calendar_id = busy_mirror_id(spec.key)
            if calendar_id is not None:
                self._reconcile_mirror(spec.key, calendar_id)
            elif spec.collection is not None:
                self._follow(spec.collection, full=True)
        log.info("busy index build finished in %.1f s", time.monotonic() - began)

    def reconcile(self) -> None:
        """At start: recompute exactly the entries whose text changed behind the index's back
        (a crash between a write and its entry, an older version of calmirror, a restore).

        The lock is held a page at a time, not for the whole walk: the walk reads and hashes
        every mirrored text (seconds at 100,000 events) while a client PUT's guard check
        waits on the same lock."""
        self.ensure()
        for spec in self.sources():
            calendar_id = busy_mirror_id(spec.key)
            if calendar_id is not None:
                self._reconcile_mirror(spec.key, calendar_id)
            elif spec.collection is not None:
                with self.lock:
                    self._follow(spec.collection, full=True)
        with self.lock:
            known = {spec.key for spec in self.sources()}
            for source in self.state.busy_sources() - known:
                self.state.busy_forget(source)

    def _reconcile_mirror(self, source: str, calendar_id: str) -> None:
        digests = self.state.busy_digests(source)
        changed: dict[str, str] = {}
        seen: set[str] = set()
        for href, text in self.state.mirror_digest_walk(calendar_id):
            seen.add(href)
            if digests.get(href) != spans.digest(text):
                changed[href] = text
                if len(changed) >= PAGE:
                    with self.lock:
                        self._write(source, changed)
                    changed = {}
        with self.lock:
            self._write(source, changed, [href for href in digests if href not in seen])

    def changed(self, collection: str) -> None:
        """A local collection changed (the daemon's server or watcher says so)."""
        self._dirty.add(collection)

    def _follow(self, collection: str, *, full: bool = False) -> None:
        """Follow a local collection through its sync token; `full` compares every digest."""
        if self.notified and not full:
            if collection not in self._dirty:
                return
            self._dirty.discard(collection)  # a change from here on marks it again
        stamp = self.store.collection_stamp(collection)
        if not full and stamp is not None and self._stamps.get(collection) == stamp:
            return
        token = None if full else self.state.busy_token(collection)
        try:
            change = self.store.changes(collection, token)
            if change.full:
                texts = self.store.items(collection)
                digests = self.state.busy_digests(collection)
                changed = {h: t for h, t in texts.items() if digests.get(h) != spans.digest(t)}
                gone = [h for h in digests if h not in texts]
            else:
                found = self.store.items_named(collection, change.changed)
                changed = {h: t for h, t in found.items() if t is not None}
                gone = [h for h, t in found.items() if t is None]
        except Exception as exc:  # not created yet, or unreadable: nothing of it counts now
            log.debug("busy: %s unreadable: %s", collection, exc)
            self._dirty.add(collection)
            return
        if changed or gone or change.token != token:
            self._write(collection, changed, gone, token=change.token)
        fresh = stamp is not None and time.time_ns() - stamp < SETTLE_NS
        if stamp is not None and not fresh:
            self._stamps[collection] = stamp
        else:
            self._stamps.pop(collection, None)

    def _follow_pushed(self) -> None:
        versions = {v.uid: v.body for v in self.state.differing_remote_versions() if v.body}
        digests = self.state.busy_digests(BUSY_PUSHED)
        changed = {uid: body for uid, body in versions.items() if digests.get(uid) != spans.digest(body)}
        gone = [uid for uid in digests if uid not in versions]
        if changed or gone:
            self._write(BUSY_PUSHED, changed, gone)

    def _recompute_stale(self) -> None:
        by_source: dict[str, list[str]] = {}
        for source, href in self.state.busy_stale():
            by_source.setdefault(source, []).append(href)
        for source, hrefs in by_source.items():
            texts = self.texts(source, hrefs)
            self._write(source, texts, [h for h in hrefs if h not in texts])

    def roll(self) -> bool:
        """Move the horizon to today's (once a day): only entries that may hold busy time
        between the old and the new end are parsed, for the occurrences starting there."""
        with self.lock:
            meta = self.state.busy_meta()
            rules = self.rules()
            if meta is None or meta["fingerprint"] != spans.fingerprint(rules):
                return False
            old = (int(meta["horizon"][0]), int(meta["horizon"][1]))
            new = spans.horizon_at(self.clock())
            if new[1] <= old[1]:
                return False
            added: dict[tuple[str, str], tuple[BusySpan, ...]] = {}
            by_source: dict[str, list[str]] = {}
            for source, href in self.state.busy_open_ended(old[1], new[1]):
                by_source.setdefault(source, []).append(href)
            for source, hrefs in by_source.items():
                for href, text in self.texts(source, hrefs).items():
                    self.computed += 1
                    added[(source, href)] = spans.extend_text(text, rules, old[1], new[1])
            moved = self.state.busy_roll(spans.fingerprint(rules), old, new, added)
            if moved:
                log.info("busy index horizon moved on; %d entries extended", len(added))
            return moved
