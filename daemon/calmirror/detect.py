"""Turn client changes in the local `appointments/` collection into outbox rows.

Radicale tells us *that* something changed (watchdog, the middleware nudge); this module
works out *what* with `collection.sync(token)`, and at start compares the whole store
with the item map so edits made while the daemon was down are not missed. Each
appointment's recorded content hash and its outbox row are written in one transaction:
a crash between the two cannot hide a change.
"""

from __future__ import annotations

import logging
import threading

from calmirror.digest import content_hash
from calmirror.local.layout import APPOINTMENTS
from calmirror.local.store import LocalStore
from calmirror.state import State
from calmirror.transform import extract_uid

log = logging.getLogger("calmirror.detect")
TOKEN_KEY = "appointments_sync_token"


class ChangeDetector:
    def __init__(self, state: State, store: LocalStore, lock: threading.RLock | None = None) -> None:
        self.state, self.store = state, store
        # Shared with the pusher and the linked follower: a change iCloud made that is being
        # written into appointments/ is recorded before a scan can take it for a client's.
        self._lock = lock or threading.RLock()

    def scan(self) -> int:
        """Enqueue what changed since the last scan; returns how many rows were enqueued."""
        with self._lock:
            token = self.state.get_meta(TOKEN_KEY)
            new_token, changed, full = self.store.changes(APPOINTMENTS, token)
            count = self._reconcile() if full or token is None else self._incremental(changed)
            self.state.set_meta(TOKEN_KEY, new_token)
            return count

    def reconcile(self) -> int:
        with self._lock:
            new_token, _, _ = self.store.changes(APPOINTMENTS, None)
            count = self._reconcile()
            self.state.set_meta(TOKEN_KEY, new_token)
            return count

    def _incremental(self, hrefs: list[str]) -> int:
        by_href = {a.local_href: a for a in self.state.appointments().values() if a.local_href}
        count = 0
        for href in hrefs:
            body = self.store.item(APPOINTMENTS, href)
            if body is None:
                gone = by_href.get(href)
                current = self.state.appointment(gone.uid) if gone else None
                if current and current.local_href == href:  # not moved to another href meanwhile
                    count += self._record(current.uid, None, None)
            elif extract_uid(body) is None:
                # Radicale stores UID-less objects (a lone VTIMEZONE): say why it is never pushed.
                log.warning("appointments/%s has no UID (no event in it); it is not pushed", href)
                self.state.record_event("warning", "push", f"appointments/{href}: not pushed: no UID (no event in it)")
            else:
                count += self._seen(href, body)
        return count

    def _reconcile(self) -> int:
        items = self.store.items(APPOINTMENTS)
        present: set[str] = set()
        count = 0
        for href, body in items.items():
            uid = extract_uid(body)
            if uid:
                present.add(uid)
                count += self._seen(href, body)
        for uid, appt in self.state.appointments().items():
            if uid not in present and appt.local_href is not None:
                count += self._record(uid, None, None)
        if count:
            log.info("reconcile: %d appointment change(s) found in the store", count)
        return count

    def _seen(self, href: str, body: str) -> int:
        uid = extract_uid(body)
        if not uid:
            return 0
        digest = content_hash(body)
        appt = self.state.appointment(uid)
        if appt and appt.local_etag == digest and appt.local_href == href:
            return 0
        return self._record(uid, href, digest)

    def _record(self, uid: str, href: str | None, digest: str | None) -> int:
        with self.state.transaction():
            self.state.update_appointment(uid, local_href=href, local_etag=digest)
            self.state.enqueue(uid, APPOINTMENTS)
        return 1
