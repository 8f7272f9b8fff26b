"""Carry out mirror plans: iCloud conflict calendars -> read-only local calendars.

One pass per calendar: one sync-collection REPORT, multigets in batches for what changed,
storage-API writes in batches, then the new token. The token is saved last, so a pass cut
short by a crash or a 503 is simply repeated; items already applied are recognised by
their ETag and not fetched again.

Beside it: which collections mirror which calendars (`mirror_collections`), making a mirror
match its record after a crash (`mirror_recovery`), where resources come from and fetching
them (`mirror_source`), and what a pass reports (`sync_report`).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import cast

from calmirror.availability import engine, spans
from calmirror.availability.busy_upkeep import BusyUpkeep
from calmirror.compat import horizon_for
from calmirror.compat_floating import binds, has_floating_times
from calmirror.config import Settings
from calmirror.errors import InvalidSyncToken
from calmirror.full_listing import full_listing_due, listed_whole
from calmirror.late_listing import confirm_absent, still_there
from calmirror.linked import LinkedFollower
from calmirror.local.layout import mirror_name
from calmirror.local.store import LocalStore
from calmirror.local.writer import Batch, Written
from calmirror.me import copies_follow_me, my_addresses
from calmirror.mirror_collections import MirrorCollections
from calmirror.mirror_lock import one_pass_at_a_time
from calmirror.mirror_recovery import MirrorRecovery
from calmirror.mirror_source import Source, fetch_halving
from calmirror.model import BusyBatch, CalendarRow, IndexedItem, MirrorEntry
from calmirror.plan import (
    MirrorPlan,
    MirrorPolicy,
    fallback_entry,
    hrefs_to_fetch,
    looks_like_full_listing,
    plan_batch,
    plan_removals,
    why_unreadable,
)
from calmirror.prefetch import prefetched
from calmirror.remote import ICloudClient
from calmirror.state import State
from calmirror.state.mirror_view import KnownItems
from calmirror.sync_report import Progress, SyncReport

log = logging.getLogger("calmirror.mirror")

#: From this many resources to fetch, a pass that writes their busy-index rows sets the
#: window index aside until it is done (`_big_fill`); under it a pass's queries stay indexed.
DEFER_WINDOW_INDEX_AT = 5_000
BusyJob = tuple[str, tuple[int, int], engine.Rules]  # the busy index's fingerprint, horizon and rules


def _binding(policy: MirrorPolicy) -> str:
    return policy.floating_zone if binds(policy.floating_zone) else ""


def _has_work(plan: MirrorPlan) -> bool:
    return bool(plan.changed or plan.entries or plan.unskipped)


class Mirror(MirrorCollections, MirrorRecovery):
    def __init__(self, state: State, store: LocalStore, settings: Settings) -> None:
        self.state, self.store, self.settings = state, store, settings
        self._checked: set[str] = set()  # calendars whose mirror this process compared with the map
        self._dirty: set[str] = set()  # calendars this process began writing and has not finished
        self.on_change: Callable[[str], None] = lambda collection: None  # tells caches a mirror changed
        self.follower: LinkedFollower | None = None  # what iCloud does to pushed appointments here

    # --- one calendar ------------------------------------------------------------------

    def policy(self, cal: CalendarRow, accept_empty: bool) -> MirrorPolicy:
        appointments = self.state.appointments()
        me = my_addresses(self.state, self.settings)
        return MirrorPolicy(
            source=cal.id,
            details=self.settings.calendar(cal.id).details,
            me=me,
            exclude_uids=frozenset(appointments),
            exclude_hrefs=frozenset(a.remote_href for a in appointments.values() if a.remote_href),
            skipped_hrefs=frozenset(r["href"] for r in self.state.skipped_items(cal.id)),
            accept_empty=accept_empty,
            horizon=horizon_for(datetime.date.today()),
            max_occurrences=self.store.limits.max_rrule_occurrence,
            floating_zone=self.settings.availability.timezone,
        )

    def sync_calendar(
        self, client: Source, cal: CalendarRow, *, accept_empty: bool = False, progress: Progress | None = None
    ) -> SyncReport:
        with one_pass_at_a_time(self.state.path.parent, cal.id, cal.name):  # not beside another process's
            return self._sync_calendar(client, cal, accept_empty=accept_empty, progress=progress)

    def _sync_calendar(
        self, client: Source, cal: CalendarRow, *, accept_empty: bool, progress: Progress | None
    ) -> SyncReport:
        slug = self.ensure_mirror(cal)
        report = SyncReport(cal.id, cal.name, slug)
        self._copies_follow_me(cal)
        self.state.update_mirror(cal.id, last_attempt=time.time())
        if cal.id not in self._checked:
            if not self.state.mirror_clean(cal.id) or not self.state.mirror_item_count(cal.id):
                self._match_map(cal, slug)
            self._checked.add(cal.id)
        row = self.state.mirror(cal.id)
        token = row.sync_token if row else None
        if token is not None and full_listing_due(self.state, cal.id, self.settings.sync.full_listing_hours):
            log.info("%s: comparing every ETag iCloud lists (the periodic full listing)", cal.name)
            token = None
        try:
            changes = client.sync(cal.url, token)
        except InvalidSyncToken:
            log.warning("%s: sync token no longer valid; full resync", cal.name)
            self.state.record_event(
                "warning", "mirror", f"{cal.name}: iCloud no longer knew the sync token; full resync"
            )
            changes = client.sync(cal.url, None)
        known = self.state.known_items(cal.id)
        known.preload([*changes.changed, *changes.deleted])
        stale = (
            token is not None and not changes.full and looks_like_full_listing(known, changes.changed, changes.deleted)
        )
        if stale:
            self.state.record_event(
                "warning",
                "mirror",
                f"{cal.name}: iCloud answered the sync token with a full listing; treated as a full resync",
            )
        report.full = changes.full or token is None or stale
        policy = self.policy(cal, accept_empty)

        removal = plan_removals(
            known, changed=changes.changed, deleted=changes.deleted, full=report.full, policy=policy
        )
        if report.full and removal.gone and not removal.held_empty:
            fetch = still_there(lambda hrefs: fetch_halving(client, cal.url, hrefs), known)
            confirmed = confirm_absent(fetch, changes, removal.gone, self.settings.sync.batch)
            if confirmed is not changes:  # some were listed late: plan with them listed
                changes = confirmed
                removal = plan_removals(
                    known, changed=changes.changed, deleted=changes.deleted, full=True, policy=policy
                )
        if removal.held_empty:
            report.held_empty = True
            self.state.update_mirror(cal.id, held_empty=1, last_error="iCloud lists no events; mirror kept")
            log.warning("%s", report.summary())
            return report

        wanted = hrefs_to_fetch(known, changes.changed, policy)
        floating = self._floating_due(cal.id, policy)  # before this pass writes copies bound as they should be
        if wanted or _has_work(removal) or floating or self._rederive_due(cal.id, policy):
            self._writing(cal.id)
        unreadable = self._fetch_all(client, cal, slug, wanted, changes.changed, known, policy, report, progress)
        self._apply(cal.id, slug, removal, known, report)
        self._rederive(cal.id, slug, known, policy, report, floating)
        if self.follower is not None and isinstance(client, ICloudClient):
            self.follower.follow(client, cal, changes.changed, changes.deleted, report.full)
        problem = None
        if unreadable:
            # Keep the old token: the next pass lists these items again and retries them, so an
            # answer cut off by the network does not hide an item until it next changes.
            problem = f"{len(unreadable)} item(s) could not be read from iCloud; retried at the next sync"
            self.state.record_event("warning", "mirror", f"{cal.name}: {problem}")
        self.state.update_mirror(
            cal.id,
            sync_token=token if unreadable else changes.token,
            last_sync=time.time(),
            held_empty=0,
            last_error=problem,
        )
        if report.full and not unreadable:
            listed_whole(self.state, cal.id)
        if cal.id in self._dirty:
            self.state.set_mirror_clean(cal.id, True)
            self._dirty.discard(cal.id)
        counts = self.state.copy_counts(cal.id)
        report.copies = {kind: sum(by_reason.values()) for kind, by_reason in counts.items()}
        report.copy_reasons = {kind: by_reason for kind, by_reason in counts.items() if by_reason and kind != "exact"}
        # An idle pass every minute would be three lines a minute per calendar in the journal for
        # ever; only a pass that changed something is news (`--verbose` shows the rest).
        changed = report.added or report.updated or report.deleted or report.skipped or report.held_empty
        (log.info if changed else log.debug)("sync %s", report.summary())
        return report

    def _copies_follow_me(self, cal: CalendarRow) -> None:
        if copies_follow_me(self.state, cal.id, self.policy(cal, False)):
            log.info("%s: your addresses changed; its busy-only copies are made again", cal.name)

    def _fetch_all(
        self,
        client: Source,
        cal: CalendarRow,
        slug: str,
        wanted: list[str],
        listed: dict[str, str],
        known: KnownItems,
        policy: MirrorPolicy,
        report: SyncReport,
        progress: Progress | None,
    ) -> dict[str, str]:
        """Fetch `wanted` in multigets and mirror each batch; the next multiget is fetched while
        this one is planned and recorded (`prefetch`) and the batches before it are checked
        and written (`BatchWriter`). Returns the unreadable hrefs.
        A batch is recorded only once written, also when the pass fails half-way, so a
        repeated pass does not fetch it again."""
        size = self.settings.sync.batch
        unreadable: dict[str, str] = {}
        batches = [wanted[start : start + size] for start in range(0, len(wanted), size)]
        busy_job = BusyUpkeep(self.store, self.state, self.settings).batch_job() if wanted else None
        with (
            self._big_fill(busy_job, len(wanted)),
            self.store.mirror_writer(slug, len(wanted)) as writer,
            contextlib.closing(prefetched(lambda batch: fetch_halving(client, cal.url, batch), batches)) as answers,
        ):
            try:
                for start, (items, missing, refused) in zip(range(0, len(wanted), size), answers, strict=True):
                    if progress:
                        progress(cal.name, start, len(wanted))
                    fetched = {item.href: (item.etag, item.body) for item in items}
                    known.preload([*fetched, *missing])
                    plan = plan_batch(known, listed=listed, fetched=fetched, missing=missing, policy=policy)
                    plan.skipped.update(refused)
                    unreadable.update(refused)
                    if _has_work(plan):
                        for written in writer.submit(self._batch(plan, policy, busy_job)):
                            self._record_written(cal.id, slug, written, known, report)
                for written in writer.drain():
                    self._record_written(cal.id, slug, written, known, report)
            except BaseException:
                self._checked.discard(cal.id)  # a batch may be half written: compare again next time
                for written in writer.settle():
                    self._record_written(cal.id, slug, written, known, report)
                raise
        if progress:
            progress(cal.name, len(wanted), len(wanted))
        return unreadable

    def _big_fill(self, busy_job: BusyJob | None, count: int) -> contextlib.AbstractContextManager[None]:
        """Around a pass that writes the busy-index rows of `count` resources: the index's
        window index set aside when they are many and the index holds fewer than ten rows per
        resource to come (an initial mirror: sorting everything once then costs less than
        keeping it), see `busy_window_deferred`."""
        if busy_job is None or count < DEFER_WINDOW_INDEX_AT or not self.state.busy_rows_fewer_than(count * 10):
            return contextlib.nullcontext()
        return self.state.busy_window_deferred()

    @staticmethod
    def _batch(plan: MirrorPlan, policy: MirrorPolicy, busy_job: BusyJob | None = None) -> Batch:
        """The local side of a plan; an exact text Radicale refuses is tried again as its
        compatible copy (`compat.py`), made from the exact text in the writer's thread.

        With `busy_job` (the busy index's fingerprint, horizon and rules), the check worker
        also computes the batch's busy-index entries from the exact texts: parsing them was
        the pass's main thread's largest cost (about 1 ms per event, with the check on the
        other core); `_record` uses them where the index has not moved on meanwhile."""
        entries = {entry.local_href: entry for entry in plan.entries}
        texts = {entry.href: entry.body for entry in plan.entries if entry.body is not None}
        side = None
        if busy_job is not None and texts:
            side = (spans.index_texts, (texts, busy_job[2], busy_job[1]))
        swapped: dict[str, MirrorEntry] = {}

        def fallback(local_href: str, refused: str) -> str | None:
            entry = entries.get(local_href)
            made = fallback_entry(entry, policy, refused) if entry is not None else None
            if made is None:
                return None
            swapped[local_href] = made[0]
            return made[1]

        job = busy_job[:2] if busy_job is not None else None
        return Batch(plan.writes, plan.local_deletes, tag=(plan, swapped, job), fallback=fallback, side=side)

    def _record_written(
        self, calendar_id: str, slug: str, written: Written, known: KnownItems, report: SyncReport
    ) -> None:
        plan, swapped, job = cast(
            tuple[MirrorPlan, dict[str, MirrorEntry], tuple[str, tuple[int, int]] | None], written.batch.tag
        )
        if swapped:
            entries = [swapped.get(e.local_href, e) if e.local_href in written.fell_back else e for e in plan.entries]
            plan = replace(plan, entries=entries)
        computed = None
        if job is not None and isinstance(written.side, dict):
            computed = BusyBatch(job[0], job[1], cast(dict[str, IndexedItem], written.side))
        self._record(calendar_id, slug, plan, written.refused, known, report, computed)

    def _rederive(
        self,
        calendar_id: str,
        slug: str,
        known: KnownItems,
        policy: MirrorPolicy,
        report: SyncReport,
        floating: Sequence[str] = (),
    ) -> None:
        """Compatible copies bounded at an older horizon are derived again from the exact
        text calmirror keeps (no request to iCloud), so they keep reaching years ahead; so are
        the `floating` ones (`_floating_due`), for the zone configured now."""
        due = sorted(set(self._rederive_due(calendar_id, policy)) | set(floating))
        if not due:
            self._bound_floating(calendar_id, policy)
            return
        texts = self.state.mirror_texts_of(calendar_id, due)
        known.preload(due)
        fetched = {href: (known[href].etag, texts[href]) for href in due if href in texts}
        plan = plan_batch(known, listed={}, fetched=fetched, missing=[], policy=replace(policy, accept_empty=True))
        counted = (report.added, report.updated)
        with self.store.mirror_writer(slug, len(fetched)) as writer:
            for written in [*writer.submit(self._batch(plan, policy)), *writer.drain()]:
                self._record_written(calendar_id, slug, written, known, report)
        report.added, report.updated = counted  # nothing changed in iCloud
        log.info("%s: %d copies derived again (horizon %s)", calendar_id, len(fetched), policy.horizon)
        self._bound_floating(calendar_id, policy)

    def _rederive_due(self, calendar_id: str, policy: MirrorPolicy) -> list[str]:
        if policy.horizon is None:
            return []
        return self.state.compatible_due(calendar_id, policy.horizon.isoformat())

    def _floating_due(self, calendar_id: str, policy: MirrorPolicy) -> list[str]:
        """Objects with floating times, when the zone their copies bind them to
        (`compat_floating`) is not the one they were last derived for: after a change of the
        configured zone, or the first pass of a mirror made before copies bound them. One scan
        of the calendar's exact texts, once per change."""
        if self.state.get_meta(f"floating_zone:{calendar_id}") == _binding(policy):
            return []
        return [href for href, text in self.state.mirror_texts(calendar_id).items() if has_floating_times(text)]

    def _bound_floating(self, calendar_id: str, policy: MirrorPolicy) -> None:
        if self.state.get_meta(f"floating_zone:{calendar_id}") != _binding(policy):
            self.state.set_meta(f"floating_zone:{calendar_id}", _binding(policy))

    def _apply(self, calendar_id: str, slug: str, plan: MirrorPlan, known: KnownItems, report: SyncReport) -> None:
        if _has_work(plan):
            refused = dict(self.store.apply_mirror(slug, plan.writes, plan.local_deletes))
            self._record(calendar_id, slug, plan, refused, known, report)

    def _record(
        self,
        calendar_id: str,
        slug: str,
        plan: MirrorPlan,
        refused: dict[str, str],
        known: KnownItems,
        report: SyncReport,
        computed: BusyBatch | None = None,
    ) -> None:
        """After a batch is written: the map, the report and the caches follow it.

        An object the mirror refused is still recorded, with iCloud's exact text, as
        withheld: busy time counts it even though clients of the mirror cannot see it."""
        self.on_change(mirror_name(slug))
        skipped = dict(plan.skipped)
        entries = []
        stale = []  # local copies of an older version that the mirror refused to replace
        dropped = []  # map entries of objects that turned unreadable
        for entry in plan.entries:
            if entry.local_href in refused:
                old = known.get(entry.href)
                if old is not None and old.in_mirror:
                    stale.append(old.local_href)
                unreadable = why_unreadable(entry.body or "")
                if unreadable:
                    skipped[entry.href] = f"{refused[entry.local_href]} ({unreadable})"
                    if old is not None:
                        dropped.append(entry.href)
                    continue
                # No ETag: the next full listing tries it again, as it did when refusals were skipped.
                entry = replace(entry, copy="withheld", reason=refused[entry.local_href], etag="")
            entries.append(entry)
            if entry.href in known:
                report.updated += 1
            else:
                report.added += 1
        if stale:
            self.store.apply_mirror(slug, [], stale)
        for entry in entries:
            if not entry.in_mirror:
                log.warning("not in the local mirror (busy time still counts): %s: %s", entry.href, entry.reason)
        for href, reason in skipped.items():
            log.warning("skip %s: %s", href, reason)
        report.skipped += len(skipped)
        report.skipped_reasons.update(skipped)
        report.deleted += len(plan.gone)
        texts = {entry.href: entry.body for entry in entries if entry.body is not None}
        busy = BusyUpkeep(self.store, self.state, self.settings).mirror_batch(calendar_id, texts, computed)
        # Not waiting for the disk per batch (an fsync each, a fifth of an initial mirror's
        # main thread): the pass marked the mirror unclean durably before its first write and
        # saves its token durably after the last, so a record lost to a power cut leaves files
        # the next process's `_match_map` removes and the next listing fetches again.
        count = self.state.apply_mirror_map(
            calendar_id,
            entries,
            [*plan.gone, *plan.unskipped, *dropped],
            skipped,
            replace=False,
            busy=busy,
            durable=False,
        )
        known.recorded([*(entry.href for entry in entries), *plan.gone, *dropped], count)
