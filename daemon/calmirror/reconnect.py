"""Following iCloud when it moves an account's calendar home (ICLOUD.md, partition host).

The home comes from the front door (caldav.icloud.com) at discovery time and lives on a
partition host (`pNN-caldav.icloud.com`) that can change. When the remembered host stops
answering, redirects, or says the home is not there, the front door is asked again; if it
names another home, the stored account, calendar, mirror and appointment URLs move there
in one transaction and the failed step is retried once. Links, conflicts and the outbox
are keyed by calendar id and UID, so they carry over unchanged.

Discovery is asked at most once per `REDISCOVERY_PERIOD_S`, shared by the daemon's
threads and every process on the home (the time is kept in the state).
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

from calmirror import account as accounts
from calmirror.errors import NotFound, RemoteError, TLSFailure, Unreachable
from calmirror.hrefs import host_of
from calmirror.model import PRIMARY
from calmirror.remote import ICloudClient
from calmirror.remote.http import REDIRECTS
from calmirror.state import State

log = logging.getLogger("calmirror.reconnect")

REDISCOVERY_PERIOD_S = 60.0
META_KEY = "rediscovery"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


def home_lost(error: RemoteError, home_url: str) -> bool:
    """Whether `error` says the home's host no longer serves the account: it did not
    answer, it redirected (never followed: credentials stay with hosts the front door
    named), or it answered 404 for the home itself."""
    if not error.url or _origin(error.url) != _origin(home_url) or isinstance(error, TLSFailure):
        return False
    if isinstance(error, Unreachable) or error.status in REDIRECTS:
        return True
    return isinstance(error, NotFound) and urlsplit(error.url).path.rstrip("/") == urlsplit(home_url).path.rstrip("/")


def outdated(error: RemoteError, home_url: str, server_url: str) -> bool:
    """The failed request went to a host that is neither the home's nor the front door's:
    the home moved (another thread or process followed it) after the request was planned."""
    return bool(error.url) and _origin(error.url) not in (_origin(home_url), _origin(server_url))


class Healer:
    """Decides and carries out a rediscovery; one per process, shared by its threads."""

    def __init__(self, state: State, period: float = REDISCOVERY_PERIOD_S, account: str = PRIMARY) -> None:
        self.state = state
        self.period = period
        self.account = account
        self.key = f"{META_KEY}:{account}" if account else META_KEY
        self._lock = threading.Lock()

    def heal(self, client: ICloudClient, error: RemoteError, *, now: float | None = None) -> bool:
        """True when the caller should retry the failed step now, with the URLs in the state."""
        account = self.state.account(self.account)
        if account is None:
            return False
        if outdated(error, account.home_url, account.server):
            return True
        if not home_lost(error, account.home_url):
            return False
        with self._lock:
            now = time.time() if now is None else now
            last = self.state.get_meta(self.key) or {}
            if now - float(last.get("at") or 0.0) < self.period:
                return False
            self.state.set_meta(self.key, {"at": now, "failed_host": host_of(error.url)})
            try:
                moved = accounts.rediscover(client, self.state, self.account)
            except RemoteError as exc:
                log.warning(
                    "%s stopped answering and asking %s again failed too: %s",
                    host_of(error.url),
                    host_of(account.server),
                    exc.message,
                )
                return False
        if not moved:
            log.warning(
                "%s failed (%s), but %s still names the same calendar home; retrying later",
                host_of(error.url),
                error.message,
                host_of(account.server),
            )
            return False
        new = self.state.account(self.account)
        moved_to = host_of(new.home_url) if new else "?"
        message = f"iCloud moved the calendar home from {host_of(account.home_url)} to {moved_to}; following it"
        log.warning("%s", message)
        self.state.record_event("warning", "connection", message)
        return True
