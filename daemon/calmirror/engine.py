"""One mirror pass and one push pass, shared by `calmirror sync` and the daemon.

Failures of one calendar never stop the others; what happened is recorded for
`calmirror status`. A 401 stops everything that talks to that account; a Retry-After holds
it. Other accounts carry on.
"""

from __future__ import annotations

import logging
import threading
import time

from calmirror import account, credentials, logs
from calmirror.config import Settings
from calmirror.connections import Connection, Connections
from calmirror.detect import ChangeDetector
from calmirror.errors import AuthFailed, CalmirrorError, NotFound, RemoteError, Unavailable
from calmirror.health import Health
from calmirror.home import Home
from calmirror.linked import LinkedFollower
from calmirror.local.store import LocalStore
from calmirror.mirror import Mirror
from calmirror.model import PRIMARY, CalendarRow, account_of
from calmirror.push import Pusher, PushResult
from calmirror.reconnect import Healer
from calmirror.refused import held_line_of
from calmirror.remote import ICloudClient
from calmirror.state import State
from calmirror.sync_report import Progress, SyncReport

log = logging.getLogger("calmirror.engine")


class Engine:
    def __init__(self, home: Home, settings: Settings, state: State) -> None:
        self.home, self.settings, self.state = home, settings, state
        self.local_account = credentials.local_account(home)
        self.store = LocalStore(home.store_dir, self.local_account.username)
        self.store.ensure_base()
        self.connections = Connections(home, settings, state)
        self.health: Health = self.connections.health(PRIMARY)  # the first account's
        # One appointment is never pushed, scanned and brought in from iCloud at once.
        self.lock = threading.RLock()
        self.linked = LinkedFollower(state, self.store, settings, self.lock)
        self.mirror = Mirror(state, self.store, settings)
        self.mirror.follower = self.linked
        self.healer: Healer = self.connections.healer(PRIMARY)
        self.pusher = Pusher(state, self.store, settings, self.health, self.lock, healer=self.healer)
        self.pusher.connections = self.connections
        self.detector = ChangeDetector(state, self.store, self.lock)

    def reload(self, settings: Settings) -> None:
        self.settings = settings
        self.mirror.settings = settings
        self.pusher.settings = settings
        self.linked.settings = settings
        self.connections.settings = settings
        self.connections.reset()

    def prepare_mirrors(self) -> None:
        """Create the local mirror of every conflict calendar already known (empty until a pass
        fills it), without asking iCloud: a client that lists or opens one while the first
        pass runs sees an empty calendar, not a 404. Mirrors no longer wanted are dropped."""
        self.mirror.prune()
        known = {cal.id: cal for cal in self.state.calendars()}
        for calendar_id in self.settings.icloud.conflicts:
            cal = known.get(calendar_id)
            if cal is not None:
                self.mirror.ensure_mirror(cal)

    def client(self, name: str = PRIMARY) -> ICloudClient:
        generation = self.connections.health(name).generation  # read before the password is loaded
        return account.client_for(self.home, self.settings, self.state, name, generation)

    def _calendar(self, conn: Connection, calendar_id: str, refreshed: set[str]) -> CalendarRow | None:
        by_id = {c.id: c for c in self.state.calendars()}
        if calendar_id not in by_id and conn.name not in refreshed:
            refreshed.add(conn.name)
            by_id = {c.id: c for c in account.refresh_calendars(conn.client, self.state, conn.name)}
        return by_id.get(calendar_id)

    def mirror_pass(
        self,
        client: ICloudClient | None,
        *,
        accept_empty: frozenset[str] = frozenset(),
        only: frozenset[str] | None = None,
        progress: Progress | None = None,
    ) -> list[SyncReport]:
        """Sync every conflict calendar; `client` talks to the first account (None: skip its
        calendars), the engine opens the others' itself."""
        self.mirror.prune()
        reports: list[SyncReport] = []
        refreshed: set[str] = set()
        addressed: set[str] = set()
        for calendar_id in self.settings.icloud.conflicts:
            if only is not None and calendar_id not in only:
                continue
            name = account_of(calendar_id)
            health = self.connections.health(name)
            if health.auth_failed:
                continue
            wait = health.wait_time()
            if wait > 0:
                label = self.state.calendar_names().get(calendar_id, calendar_id)
                reports.append(
                    SyncReport(
                        calendar_id,
                        label,
                        "",
                        error=f"the server asked to wait; nothing is sent to it for {wait:.0f} s",
                    )
                )
                continue
            try:
                conn = self.connections.connection(name, client)
            except CalmirrorError as exc:
                reports.append(self._failed(calendar_id, exc.message))
                continue
            if conn is None:
                continue
            if conn.name not in addressed:
                addressed.add(conn.name)
                self._addresses(conn)
            report = self._sync_one(conn, calendar_id, accept_empty, progress, refreshed)
            reports.append(report)
        if only is None:
            self._follow_unmirrored(client)
        return reports

    def _addresses(self, conn: Connection) -> None:
        """The user's addresses, read again once a day (a failure here leaves the old ones;
        the calendar's own request reports the account's trouble)."""
        try:
            account.refresh_addresses(conn.client, self.state, conn.name)
        except RemoteError as exc:
            log.warning("reading your addresses from %s failed: %s", conn.name or "the account", exc.message)
            # Asked again tomorrow, not at every pass: a server that refuses the PROPFIND keeps refusing.
            self.state.set_addresses(self.state.addresses(conn.name), conn.name)

    def _follow_unmirrored(self, client: ICloudClient | None) -> None:
        """Pushed appointments in a calendar that is not mirrored are followed all the same."""
        mirrored = set(self.settings.icloud.conflicts)
        calendars = self.state.calendars()
        for name in self.connections.names():
            if self.connections.health(name).blocked:
                continue
            try:
                conn = self.connections.connection(name, client)
                if conn is None:
                    continue
                self.linked.follow_unmirrored(conn.client, [c for c in calendars if account_of(c.id) == name], mirrored)
            except RemoteError as exc:
                if not self.connections.health(name).failed(exc):  # refused the password before a reconnect
                    continue  # the next pass follows them with the new one
                self.state.record_event("error", "linked", f"following pushed appointments: {exc.message}")
                log.error("following pushed appointments failed: %s", exc.message)
            except CalmirrorError as exc:
                log.error("following pushed appointments failed: %s", exc.message)

    def _failed(self, calendar_id: str, message: str) -> SyncReport:
        # The last name known: a calendar deleted in iCloud keeps it after it left the listing.
        name = self.state.calendar_names().get(calendar_id, calendar_id)
        before = self.state.mirror(calendar_id)
        self.state.update_mirror(calendar_id, last_error=message[:300], last_attempt=time.time())
        if before is not None and before.last_error == message[:300]:
            # The same failure at every pass (iCloud out for an hour): said when it began, not
            # three lines a minute in the journal and in status's recent errors.
            log.debug("sync %s failed again: %s", name, message, extra=logs.REPORTED)
        else:
            self.state.record_event("error", "mirror", f"{name}: {message}")
            log.error("sync %s failed: %s", name, message, extra=logs.REPORTED)
        return SyncReport(calendar_id, name, getattr(self.state.mirror(calendar_id), "slug", None) or "", error=message)

    def _sync_one(
        self,
        conn: Connection,
        calendar_id: str,
        accept_empty: frozenset[str],
        progress: Progress | None,
        refreshed: set[str],
        *,
        followed: bool = False,
    ) -> SyncReport:
        try:
            cal = self._calendar(conn, calendar_id, refreshed)
            if cal is None:
                raise NotFound(_gone(calendar_id))
            report = self.mirror.sync_calendar(
                conn.client, cal, accept_empty=calendar_id in accept_empty, progress=progress
            )
            conn.health.ok()
            return report
        except RemoteError as exc:
            causes: list[RemoteError] = [exc]
            if isinstance(exc, NotFound) and conn.name not in refreshed:
                refreshed.add(conn.name)
                try:
                    account.refresh_calendars(conn.client, self.state, conn.name)
                except RemoteError as listing:  # the home itself may be gone from this host
                    causes.append(listing)
                if len(causes) == 1 and all(c.id != calendar_id for c in self.state.calendars()):
                    exc = NotFound(_gone(calendar_id), url=exc.url, status=exc.status)  # deleted in iCloud just now
            healer = conn.healer
            if (
                not followed
                and not isinstance(exc, AuthFailed)
                and healer
                and any(healer.heal(conn.client, e) for e in causes)
            ):
                refreshed.add(conn.name)
                return self._sync_one(conn, calendar_id, accept_empty, progress, refreshed, followed=True)
            if not conn.health.failed(exc):  # a 401 to the password from before a reconnect
                return self._failed(calendar_id, "refused with the password from before the reconnect; next pass")
            message = exc.message if not isinstance(exc, AuthFailed) else held_line_of(self.state, conn.name)
            if isinstance(exc, Unavailable) and exc.retry_after:
                message += f"; the server asked to wait {exc.retry_after:.0f} s"
            return self._failed(calendar_id, message)

    def push_pass(self, client: ICloudClient) -> list[PushResult]:
        self.linked.resume()
        self.detector.scan()
        return self.pusher.drain(client)


def _gone(calendar_id: str) -> str:
    return (
        f"the calendar no longer exists in iCloud; its mirror is kept until you run "
        f"`calmirror conflicts remove {calendar_id}`"
    )
