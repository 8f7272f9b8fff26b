"""Carry out push plans: the durable outbox -> the linked iCloud calendar.

Exactly-once comes from three things together: a row leaves the outbox only after iCloud
acknowledged the write; a new appointment always goes to the same URL (derived from its
UID) with `If-None-Match: *`, so a create retried after a crash finds the first one (412)
and turns into an update; and updates and deletes carry the ETag we last saw.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from calmirror import account
from calmirror.config import Settings
from calmirror.connections import Connection, Connections
from calmirror.digest import content_hash
from calmirror.errors import (
    AuthFailed,
    BadRemoteData,
    CalmirrorError,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RemoteError,
    Unavailable,
    Unreachable,
)
from calmirror.health import Health
from calmirror.local.layout import APPOINTMENTS
from calmirror.local.store import LocalStore
from calmirror.model import PRIMARY, OutboxRow, PushKind, account_of
from calmirror.plan import PushAction, plan_push
from calmirror.reconnect import Healer
from calmirror.refused import held_line_of
from calmirror.remote import ICloudClient
from calmirror.state import State
from calmirror.transform import icloud_body

log = logging.getLogger("calmirror.push")

#: A row whose write was refused with the password from before a reconnect (sent just
#: before it, answered just after): it goes again over a client with the new one.
STALE_REFUSAL = "refused with the password from before the reconnect; sent again"

#: How long a row whose account refused the password waits before it is looked at again (a
#: reconnect makes it due at once).
HELD_RETRY_S = 30.0


@dataclass(frozen=True)
class PushResult:
    uid: str
    action: PushKind
    ok: bool
    detail: str = ""


def backoff(attempts: int, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter, capped: 1 s, 2 s, 4 s, … up to `cap`."""
    rng = rng or random.Random()
    return min(cap, 2.0 ** min(attempts, 16)) * rng.uniform(0.5, 1.0)


class Pusher:
    def __init__(
        self,
        state: State,
        store: LocalStore,
        settings: Settings,
        health: Health,
        lock: threading.RLock | None = None,
        *,
        healer: Healer | None = None,
    ) -> None:
        self.state, self.store, self.settings, self.health = state, store, settings, health
        # Shared with the change detector and the linked follower (`linked.py`): one
        # appointment is never pushed while iCloud's change to it is being brought in.
        self.lock = lock or threading.RLock()
        self.healer = healer
        # Set by the engine when there may be several accounts: each row goes over the
        # connection of the account its calendar is in, held only by that account's health.
        self.connections: Connections | None = None

    def linked_url(self) -> str | None:
        linked = self.settings.icloud.linked
        for cal in self.state.calendars():
            if cal.id == linked:
                return cal.url
        return None

    def drain(
        self, client: ICloudClient | None, *, limit: int | None = None, should_stop: Callable[[], bool] = lambda: False
    ) -> list[PushResult]:
        """Push every due row; stops early when every account refused the password or asked
        us to wait, or on shutdown. `client` talks to the first account. A row whose own
        account is held is put back untried until the hold ends."""
        results: list[PushResult] = []
        while limit is None or len(results) < limit:
            # The holds before `should_stop`: the daemon renews its clients (stopping a drain
            # over the old one) before a reconnect lifts a refused password's hold, so a drain
            # that finds the hold lifted never sends a row with the old password.
            if self._all_held() or should_stop():
                break
            rows = self.state.claim(time.time(), limit=1)
            if not rows:
                break
            conn = self._connection(rows[0], client)
            if conn is None or conn.health.blocked:
                wait = conn.health.wait_time() if conn is not None else 0.0
                self.state.defer(rows[0], time.time() + max(wait, HELD_RETRY_S))
                continue
            results.append(self.push_row(conn, rows[0]))
        return results

    def _all_held(self) -> bool:
        if self.connections is None:
            return self.health.blocked
        return all(self.connections.health(name).blocked for name in self.connections.names())

    def _connection(self, row: OutboxRow, client: ICloudClient | None) -> Connection | None:
        """The account a row's write goes to: where the appointment was created, else the
        linked calendar's."""
        if self.connections is None:
            return Connection(PRIMARY, client, self.health, self.healer) if client else None
        appt = self.state.appointment(row.uid)
        if appt is not None and appt.remote_calendar:
            name = self.connections.account_of_url(appt.remote_calendar)
        else:
            name = account_of(self.settings.icloud.linked or "")
        try:
            return self.connections.connection(name, client)
        except CalmirrorError as exc:
            log.error("push %s: %s", row.uid, exc.message)
            return None

    def push_row(self, conn: Connection, row: OutboxRow) -> PushResult:
        with self.lock:
            return self._push_row(conn, row)

    def _push_row(self, conn: Connection, row: OutboxRow) -> PushResult:
        appt = self.state.appointment(row.uid)
        local_href = appt.local_href if appt else None
        body = self.store.item(APPOINTMENTS, local_href) if local_href else None
        local_etag = content_hash(body) if body is not None else None

        def plan(calendars: frozenset[str] | None = None) -> PushAction:
            linked = self.linked_url()
            return plan_push(
                row.uid,
                body,
                local_etag,
                self.state.appointment(row.uid),  # read again: a followed home move rewrites its href
                linked,
                self.settings.push.cancel,
                local_href or "",
                calendars,
                linked_missing=linked is None and bool(self.settings.icloud.linked),
            )

        action = plan()
        try:
            action = self._carry_out_following(conn, row.uid, action, local_etag, plan)
        except AuthFailed as exc:
            if not conn.health.failed(exc):  # sent with the password before a reconnect: again now
                self.state.retry_later(row, time.time(), STALE_REFUSAL)
                return PushResult(row.uid, action.kind, False, "refused with the old password")
            refused = held_line_of(self.state, conn.name)  # in the terms of the server that refused
            self.state.retry_later(row, time.time(), refused)
            self.state.record_event("error", "push", f"{row.uid}: {refused}")
            log.error("push stopped: %s", refused)
            return PushResult(row.uid, action.kind, False, "auth failed")
        except (Unavailable, Unreachable, BadRemoteData) as exc:
            conn.health.failed(exc)
            delay = backoff(row.attempts, self.settings.push.max_backoff)
            if isinstance(exc, Unavailable) and exc.retry_after:
                delay = max(delay, exc.retry_after)
                if self.connections is None or len(self.connections.names()) <= 1:
                    self.state.hold_pending_until(time.time() + exc.retry_after)
            self.state.retry_later(row, time.time() + delay, exc.message[:300])
            log.warning("retry %s in %.0f s: %s", row.uid, delay, exc.message)
            return PushResult(row.uid, action.kind, False, exc.message)
        except Forbidden as exc:
            reason = (
                "iCloud refused the write (403): this UID already exists in another iCloud calendar, "
                "or the linked calendar is read-only"
            )
            self.state.fail(row, reason)
            self.state.record_event("error", "push", f"{row.uid}: {reason}")
            log.error("push %s failed: %s (%s)", row.uid, reason, exc.url)
            return PushResult(row.uid, action.kind, False, reason)
        except RemoteError as exc:
            delay = backoff(row.attempts, self.settings.push.max_backoff)
            self.state.retry_later(row, time.time() + delay, exc.message[:300])
            log.warning("retry %s in %.0f s: %s", row.uid, delay, exc.message)
            return PushResult(row.uid, action.kind, False, exc.message)
        if action.kind == "hold":
            return self._hold(row, action.reason)
        if action.kind == "refuse":
            self.state.fail(row, action.reason)
            self.state.record_event("warning", "push", f"{row.uid}: not pushed: {action.reason}")
            log.warning("not pushing %s: %s", row.uid, action.reason)
            return PushResult(row.uid, action.kind, False, action.reason)
        conn.health.ok()
        self.state.finish(row)
        if action.kind not in ("nothing", "forget"):
            log.info("push %s %s", action.kind, row.uid)
            self.state.set_meta("last_push", {"ts": time.time(), "uid": row.uid, "action": action.kind})
        return PushResult(row.uid, action.kind, True)

    def _hold(self, row: OutboxRow, reason: str) -> PushResult:
        """Wait (with backoff) for something only the user can change, such as the linked
        calendar; status shows the reason, and a config reload makes the row due again."""
        delay = backoff(row.attempts, self.settings.push.max_backoff)
        self.state.retry_later(row, time.time() + delay, reason)
        if row.last_error != reason:  # once, not at every retry
            self.state.record_event("error", "push", f"{row.uid}: waiting: {reason}")
        log.warning("holding %s: %s", row.uid, reason)
        return PushResult(row.uid, "hold", False, reason)

    # --- the writes ----------------------------------------------------------------------

    def _carry_out(
        self,
        conn: Connection,
        uid: str,
        action: PushAction,
        local_etag: str | None,
        plan: Callable[[frozenset[str] | None], PushAction],
    ) -> PushAction:
        """Execute `action`; returns what was done in the end.

        A PUT answered 409 (or 404) may mean the appointment's calendar was deleted in iCloud,
        and retrying it would fail forever. Then the calendars iCloud has now are listed and
        the appointment planned again knowing them: created afresh in the linked calendar,
        or held while that one is gone too. When its calendar is still there the refusal
        was about something else, and the original error stands.
        """
        client = conn.client
        try:
            self._execute(client, uid, action, local_etag)
            return action
        except (Conflict, NotFound) as exc:
            if action.kind not in ("create", "update"):
                raise
            replanned = plan(self._calendar_urls(conn, exc))
            if replanned == action:
                raise
            if replanned.kind == "create":
                log.warning("%s: its iCloud calendar was deleted; creating it in the linked calendar", uid)
                self.state.record_event(
                    "warning",
                    "push",
                    f"{uid}: its iCloud calendar no longer exists; created again in the linked calendar",
                )
            self._execute(client, uid, replanned, local_etag)
            return replanned

    def _carry_out_following(
        self,
        conn: Connection,
        uid: str,
        action: PushAction,
        local_etag: str | None,
        plan: Callable[[frozenset[str] | None], PushAction],
    ) -> PushAction:
        """`_carry_out`, and once more, planned afresh, when iCloud moved the calendar home
        (see `reconnect`). The first attempt either never reached iCloud or is found by the
        conditional create's 412, so the appointment still arrives once."""
        try:
            return self._carry_out(conn, uid, action, local_etag, plan)
        except AuthFailed:
            raise
        except RemoteError as exc:
            if conn.healer is None or not conn.healer.heal(conn.client, exc):
                raise
        return self._carry_out(conn, uid, plan(None), local_etag, plan)

    def _calendar_urls(self, conn: Connection, cause: RemoteError) -> frozenset[str]:
        """The URLs of the calendars the server lists now (also kept in the state for status)."""
        try:
            return frozenset(cal.url for cal in account.refresh_calendars(conn.client, self.state, conn.name))
        except RemoteError:
            raise
        except CalmirrorError:
            raise cause from None  # no account to list with: report the write's own error

    def _execute(self, client: ICloudClient, uid: str, action: PushAction, local_etag: str | None) -> None:
        if action.kind == "forget":
            self.state.forget_appointment(uid)
        elif action.kind == "nothing":
            if local_etag:
                self.state.update_appointment(uid, pushed_etag=local_etag)
        elif action.kind == "create":
            assert action.href and action.body
            linked = self.linked_url()
            if not (linked and action.href.startswith(linked.rstrip("/") + "/")):
                linked = action.href.rsplit("/", 1)[0] + "/"  # an unconfirmed create, linked elsewhere since
            # Durable intent: the href first, so a deletion after a lost answer still reaches it.
            self.state.update_appointment(
                uid, remote_calendar=linked, remote_href=action.href, remote_etag=None, pushed_etag=None
            )
            etag = self._create(client, action.href, action.body)
            self.state.agree(
                uid, remote_calendar=linked, remote_href=action.href, remote_etag=etag, pushed_etag=local_etag
            )
        elif action.kind == "cancel":  # a local deletion under cancel = "mark-cancelled"
            assert action.href
            self._mark_cancelled(client, action.href)
            self.state.forget_appointment(uid)
        elif action.kind == "update":
            assert action.href and action.body
            etag = self._update(client, uid, action.href, action.body, action.etag)
            self.state.agree(uid, remote_href=action.href, remote_etag=etag, pushed_etag=local_etag)
        elif action.kind == "delete":
            assert action.href
            self._delete(client, action.href, action.etag)
            if action.forget_after:
                self.state.forget_appointment(uid)
            else:
                self.state.agree(uid, remote_calendar=None, remote_href=None, remote_etag=None, pushed_etag=local_etag)

    def _create(self, client: ICloudClient, href: str, body: str) -> str:
        try:
            return client.create(href, body)
        except PreconditionFailed:
            # Already there: our own earlier create whose answer was lost. Overwrite it.
            current = client.get(href)
            log.info("create %s found an existing copy (earlier attempt); updating it", href)
            return client.update(href, body, current.etag)

    def _update(self, client: ICloudClient, uid: str, href: str, body: str, etag: str | None) -> str:
        """Write the local version over the one we last saw. When iCloud holds another one
        (412) or none (404), both sides changed since they last agreed: the local change is
        pushed, and iCloud's version is kept as a conflict that `status` lists."""
        try:
            if etag is None:
                etag = client.get(href).etag
            return client.update(href, body, etag)
        except PreconditionFailed:
            try:
                current = client.get(href)
            except NotFound:  # If-Match on a vanished object answers 412, not 404
                return self._recreate(client, uid, href, body)
            if current.body != body:  # not our own earlier write whose answer was lost
                log.warning("412 on %s: changed in iCloud and locally; local version pushed, iCloud's kept", href)
                self.state.add_conflict(uid, body, current.body, "changed in iCloud and locally; local version pushed")
                self.state.record_event(
                    "warning",
                    "push",
                    f"{uid}: changed in iCloud and locally; the local version was pushed and iCloud's is kept "
                    "(`calmirror status --json`)",
                )
            return client.update(href, body, current.etag)
        except NotFound:
            return self._recreate(client, uid, href, body)

    def _recreate(self, client: ICloudClient, uid: str, href: str, body: str) -> str:
        log.info("%s vanished from iCloud; recreating it", href)
        self.state.add_conflict(uid, body, None, "deleted in iCloud and changed locally; created again")
        self.state.record_event(
            "warning", "push", f"{uid}: deleted in iCloud but changed locally; created again from the local version"
        )
        return self._create(client, href, body)

    def _delete(self, client: ICloudClient, href: str, etag: str | None) -> None:
        try:
            client.delete(href, etag)
        except PreconditionFailed:
            with contextlib.suppress(NotFound):
                client.delete(href, client.get(href).etag)
        except NotFound:
            pass

    def _mark_cancelled(self, client: ICloudClient, href: str) -> None:
        try:
            current = client.get(href)
        except NotFound:
            return
        client.update(href, icloud_body(current.body, href, cancelled=True), current.etag)
