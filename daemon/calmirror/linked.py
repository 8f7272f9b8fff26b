"""Follow what iCloud does to pushed appointments: the linked side of each mirror pass.

A calendar's mirror leaves pushed appointments out (they are already in `appointments/`),
so without this a change made on a phone would be invisible: busy at the old time, and
reverted by the next local edit. Here each pass records iCloud's differing version (busy
time counts it while it differs), and in two-way mode brings it into `appointments/`.

Bringing it in is three steps, each safe to cut short: the text to write is recorded with
iCloud's version (`applying`), then written through the storage API, then recorded as
agreed. `resume` at start finishes a write a crash interrupted before the change detector
could take it for a client's edit. One lock, shared with the detector and the pusher,
keeps a push and a write of the same appointment apart in the running daemon.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from calmirror.config import Settings
from calmirror.digest import content_hash
from calmirror.errors import InvalidSyncToken
from calmirror.full_listing import full_listing_due, listed_whole
from calmirror.local.layout import APPOINTMENTS
from calmirror.local.store import LocalStore
from calmirror.model import Appointment, CalendarRow, RemoteVersion
from calmirror.plan_linked import folder_of as _folder
from calmirror.plan_linked import plan_linked, pushed_here, seen_changes
from calmirror.remote import ICloudClient
from calmirror.state import State
from calmirror.transform import extract_uid

log = logging.getLogger("calmirror.linked")


class LinkedFollower:
    def __init__(self, state: State, store: LocalStore, settings: Settings, lock: threading.RLock) -> None:
        self.state, self.store, self.settings, self.lock = state, store, settings, lock
        # Told of every write to `appointments/`, as the local server tells of a client's: the
        # busy index must count the moved time now, not when the folder watcher notices.
        self.on_change: Callable[[str], None] = lambda collection: None

    def follow(
        self, client: ICloudClient, cal: CalendarRow, listed: dict[str, str], deleted: list[str], full: bool
    ) -> int:
        """Record what one listing of `cal` says about the appointments pushed to it, fetching
        the changed ones, then settle every differing version. Returns how many were seen."""
        pushed = pushed_here(self.state.appointments().values(), cal.url)
        if not pushed:
            return 0
        known = {v.uid: v for v in self.state.remote_versions()}
        fetch, gone, confirm = seen_changes(pushed, listed, deleted, full, known)
        seen: list[tuple[Appointment, RemoteVersion]] = []
        now = time.time()
        if fetch or confirm:
            # A GET of the href is the reliable read where a listing may lag (ICLOUD.md #17):
            # what a full listing missed is gone only if fetching it finds nothing.
            wanted = sorted({*fetch, *confirm})
            items, missing = client.fetch(cal.url, wanted, batch=max(1, self.settings.sync.batch))
            for item in items:
                appt = pushed[item.href]
                if item.href not in fetch and item.etag == appt.remote_etag:
                    continue  # there as we pushed it: the listing was late, nothing changed
                if extract_uid(item.body) == appt.uid:
                    seen.append((appt, RemoteVersion(appt.uid, cal.id, item.href, item.etag, item.body, now)))
            gone = sorted({*gone, *(href for href in missing if href in pushed)})
        for href in gone:
            appt = pushed[href]
            seen.append((appt, RemoteVersion(appt.uid, cal.id, href, "", None, now)))
        with self.lock:
            for was, version in seen:
                current = self.state.appointment(was.uid)
                # A push between the listing and now makes what was listed stale: the next
                # listing shows iCloud's new ETag and is judged again.
                if current is None or (current.remote_href, current.remote_etag) != (was.remote_href, was.remote_etag):
                    continue
                self.state.set_remote_version(version)
                what = "deleted" if version.deleted else "changed"
                log.info("%s %s in iCloud", version.uid, what)
        self.settle()
        return len(seen)

    def follow_unmirrored(self, client: ICloudClient, calendars: list[CalendarRow], mirrored: set[str]) -> int:
        """Follow calendars that hold pushed appointments but are not mirrored (linked with
        `--no-conflict`, or linked before): one sync REPORT each, with a token of their own."""
        holding = {
            _folder(a.remote_calendar or a.remote_href.rsplit("/", 1)[0])
            for a in self.state.appointments().values()
            if a.remote_href
        }
        seen = 0
        for cal in calendars:
            if cal.id in mirrored or _folder(cal.url) not in holding:
                continue
            key = f"linked_token:{cal.id}"
            token = self.state.get_meta(key)
            if token is not None and full_listing_due(self.state, cal.id, self.settings.sync.full_listing_hours):
                token = None  # now and then every ETag, in case a token passed over a change
            try:
                changes = client.sync(cal.url, token)
            except InvalidSyncToken:
                changes = client.sync(cal.url, None)
            full = changes.full or token is None
            seen += self.follow(client, cal, changes.changed, changes.deleted, full)
            self.state.set_meta(key, changes.token)
            if full:
                listed_whole(self.state, cal.id)
        return seen

    def resume(self) -> int:
        """At start, before the change detector looks: finish what a crash cut short."""
        return self.settle()

    def settle(self) -> int:
        """Decide every recorded version again; returns how many were brought in."""
        done = 0
        with self.lock:
            pending = {row.uid for row in self.state.outbox(("pending", "in_flight"))}
            for version in self.state.remote_versions():
                done += self._settle(version, version.uid in pending)
        return done

    def _settle(self, version: RemoteVersion, pending: bool) -> int:
        appt = self.state.appointment(version.uid)
        local = self.store.item(APPOINTMENTS, appt.local_href) if appt and appt.local_href else None
        decision = plan_linked(self.settings.push.linked, version, appt, local, pending)
        if decision.step in ("ignore", "agreed"):
            self.state.drop_remote_version(version.uid)
            return 0
        if decision.step == "keep" or appt is None or appt.local_href is None or decision.text is None:
            if version.applying is not None:  # a crash left a write the user overtook: no longer ours to finish
                self.state.set_remote_version(replace(version, applying=None))
                self.state.record_event("warning", "linked", f"{version.uid}: {decision.reason}")
            return 0
        if decision.step == "apply":
            self.state.set_remote_version(replace(version, applying=decision.text))
            self.store.write_appointment(appt.local_href, decision.text)
        self._record(version, appt.local_href, decision.text)
        if decision.step == "apply":
            self.on_change(APPOINTMENTS)
        return 1

    def _record(self, version: RemoteVersion, local_href: str, text: str) -> None:
        written = self.store.item(APPOINTMENTS, local_href) or text
        digest = content_hash(written)
        if version.deleted:
            self.state.agree(
                version.uid,
                local_etag=digest,
                pushed_etag=digest,
                remote_calendar=None,
                remote_href=None,
                remote_etag=None,
            )
            message = f"{version.uid}: deleted in iCloud; marked cancelled in {APPOINTMENTS}/"
        else:
            self.state.agree(version.uid, local_etag=digest, pushed_etag=digest, remote_etag=version.etag)
            message = f"{version.uid}: changed in iCloud; the change is in {APPOINTMENTS}/"
        self.state.record_event("info", "linked", message)
        log.info("%s", message)
