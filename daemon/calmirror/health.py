"""Connection health of one account, shared by the mirror loop and the push worker.

Both talk to the same account, so a 503 with Retry-After seen by one holds the other too
(no request to that account before it elapses), and a 401 stops both until the user
reconnects. Each account has its own: one account's refusal or outage never holds
another's traffic. The state is persisted so `calmirror status` can show it from another
process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from calmirror.errors import AuthFailed, RemoteError, Unavailable, Unreachable
from calmirror.model import PRIMARY
from calmirror.state import State

HEALTH_KEY = "health"
log = logging.getLogger("calmirror.health")


def health_key(account: str = PRIMARY) -> str:
    """Where an account's health is kept: the first account's where it always was."""
    return f"{HEALTH_KEY}:{account}" if account else HEALTH_KEY


def mark_ok(state: State, account: str = PRIMARY) -> None:
    state.set_meta(health_key(account), {"state": "ok", "since": time.time(), "not_before": 0})


class Health:
    def __init__(self, state: State, account: str = PRIMARY) -> None:
        self.state = state
        self.account = account
        self.key = health_key(account)
        self._lock = threading.Lock()
        current = state.get_meta(self.key) or {}
        self.not_before: float = float(current.get("not_before") or 0.0)
        # A new process tries once even after a 401: the password may have been fixed meanwhile.
        self.auth_failed = False
        # The credentials generation: bumped at each reconnect. A client carries the one it
        # was made in; a 401 to a request sent with an older password says nothing of the
        # current one and holds nothing (it arrived after the reconnect, slow or queued).
        self.generation = 0

    def wait_time(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return max(0.0, self.not_before - now)

    def ok(self) -> None:
        with self._lock:
            previous = self.state.get_meta(self.key) or {}
            self.auth_failed = False
            if previous.get("state") != "ok":
                self.state.set_meta(self.key, {"state": "ok", "since": time.time(), "not_before": 0})
            if previous.get("state") in ("unreachable", "auth_failed"):  # its failures were logged once
                log.info("%s answers again", f"account {self.account}" if self.account else "iCloud")

    def renew_credentials(self) -> None:
        with self._lock:
            self.generation += 1

    def stale(self, error: RemoteError) -> bool:
        """A 401 to a request sent with a password from before the last reconnect."""
        return isinstance(error, AuthFailed) and error.generation is not None and error.generation != self.generation

    def failed(self, error: RemoteError) -> bool:
        """Record a remote failure; callers decide per row what to retry. False when it was a
        stale 401 (`stale`), which is only logged."""
        with self._lock:
            previous: dict[str, Any] = self.state.get_meta(self.key) or {}
            now = time.time()
            if self.stale(error):
                log.info("a 401 to a request sent with the password before the reconnect; not held (%s)", self.account)
                return False
            if isinstance(error, AuthFailed):
                self.auth_failed = True
                kind = "auth_failed"
            elif isinstance(error, Unavailable | Unreachable):
                kind = "unreachable"
            else:
                return True
            if isinstance(error, Unavailable) and error.retry_after:
                self.not_before = max(self.not_before, now + error.retry_after)
            since = previous.get("since", now) if previous.get("state") == kind else now
            self.state.set_meta(
                self.key,
                {"state": kind, "since": since, "not_before": self.not_before, "detail": error.message[:300]},
            )
            return True

    def reset_auth(self) -> None:
        """After a reconnect (new password), try again."""
        with self._lock:
            self.auth_failed = False
            self.state.set_meta(self.key, {"state": "ok", "since": time.time(), "not_before": 0})

    @property
    def blocked(self) -> bool:
        """Nothing may be sent to this account now (refused password, or asked to wait)."""
        return self.auth_failed or self.wait_time() > 0


def describe(state: State, now: float | None = None, account: str = PRIMARY) -> dict[str, Any]:
    now = time.time() if now is None else now
    current = state.get_meta(health_key(account)) or {"state": "unknown"}
    text = {
        "ok": "ok",
        "auth_failed": "auth failed: reconnect required",
        "unreachable": "unreachable",
        "unknown": "not checked yet",
    }.get(current["state"], current["state"])
    retry_in = max(0.0, float(current.get("not_before") or 0) - now)
    if current["state"] == "unreachable" and retry_in > 0:
        # A 503 with Retry-After is an answer, not an outage: say until when nothing is sent.
        until = time.strftime("%H:%M:%S", time.localtime(now + retry_in))
        text = f"asked to wait: nothing is sent to it before {until}, then calmirror tries again"
    elif current["state"] == "unreachable" and current.get("since"):
        text += " since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(current["since"]))
    return {**current, "text": text, "retry_in": retry_in}
