"""The double-booking guard and the free-busy answer of the local server.

Both use the same busy rules as `calmirror availability`, and the guard and `busy/` the same
combined busy set, so a client, the CLI and the CRM never disagree about when the user is free.
The guard parses only the candidate and asks the busy index for its window: no lock is held
across other writers, and no other event is parsed.

In the daemon the guard's warnings (mode "warn") are written by a thread of their own
(`GuardNotes`), not inside the client's PUT: a warning is a transaction of the state
database, which commits with an fsync (synchronous=FULL) and waits for `State`'s lock behind
any mirror batch, several milliseconds where the check itself takes one. The notes keep the
guard's order, are written within moments, and the daemon writes what is still queued
before it closes the database; only a crash in those moments loses one (the log line, written
at once, still says it).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from calmirror.availability import engine
from calmirror.availability.far_checks import FarChecks
from calmirror.availability.sources import BusySources, Candidate
from calmirror.local.layout import APPOINTMENTS, BUSY, split_path
from calmirror.model import GuardNote
from calmirror.state import State
from calmirror.worker import Worker

log = logging.getLogger("calmirror.guard")
GUARD_WAIT_S = 5.0
NOTES_BATCH = 200  # decisions written per transaction when many are queued


class Notes(Protocol):
    """Where the guard's decisions go: a UID's warning set, or cleared when it no longer clashes."""

    def warn(self, uid: str, note: GuardNote) -> None: ...

    def clear(self, uid: str) -> None: ...


class StateNotes:
    """Written at once, in the caller's thread (the CLI, tests, benchmarks)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def warn(self, uid: str, note: GuardNote) -> None:
        self.state.apply_guard_warnings([(uid, note)])

    def clear(self, uid: str) -> None:
        self.state.apply_guard_warnings([(uid, None)])


class GuardNotes:
    """Written by a thread of its own, in the order the guard decided (see the module docstring)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._worker: Worker[tuple[str, GuardNote | None]] = Worker(
            "guard-notes",
            state.apply_guard_warnings,  # the decisions were logged; one batch that fails is logged too
            log,
            "could not save %d double-booking warning change(s)",
            batch=NOTES_BATCH,
        )

    def warn(self, uid: str, note: GuardNote) -> None:
        self._worker.put((uid, note))

    def clear(self, uid: str) -> None:
        self._worker.put((uid, None))

    def start(self) -> None:
        self._worker.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False after `timeout` s."""
        return self._worker.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (before the state database closes)."""
        self._worker.close(timeout)


def make_guard(
    busy: BusySources,
    state: State,
    mode: Callable[[], str],
    notes: Notes | None = None,
    far: FarChecks | None = None,
) -> Callable[[str, bytes], str | None]:
    """`notes`: where warnings go; written at once into `state` when None. `far`: where a
    check in mode "warn" of a booking past the busy index's horizon runs (`far_checks`);
    in the request when None."""
    sink = StateNotes(state) if notes is None else notes
    decided: dict[str, int] = {}  # uid -> the latest decision's number
    numbers = itertools.count()
    order = threading.Lock()

    def check(
        cal: Candidate, uid: str, summary: str, current: str, number: int, wait: float = GUARD_WAIT_S
    ) -> str | None:
        if current != "reject":  # only a warning is at stake: a version replaced since is not worth seconds
            with order:
                if decided.get(uid) != number:
                    return None
        hits = busy.overlaps(cal, wait=wait)
        if hits is None:  # the busy index is being built: never keep a client waiting
            log.warning("double-booking check skipped for %s: calendars still loading", uid)
            return None
        start, end = hits[0] if hits else (None, None)
        when = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC" if start and end else ""
        if hits and current == "reject":  # every version is checked: the write waits on this answer
            log.info("guard rejected %s: overlaps busy time %s", uid, when)
            return f"overlaps busy time {when}; choose a free time"
        with order:  # a decision about an older version of the appointment is dropped
            if decided.get(uid) != number:
                return None
            if start is None or end is None:
                sink.clear(uid)
                return None
            sink.warn(uid, GuardNote(summary, start.isoformat(), end.isoformat(), time.time()))
        log.warning("double booking: %s overlaps busy time %s", summary, when)
        return None

    def guard(collection: str, body: bytes) -> str | None:
        current = mode()
        if current == "off" or collection != APPOINTMENTS:
            return None
        return decide(body, current, again=False)

    def decide(body: bytes, current: str, again: bool) -> str | None:
        try:
            cal = engine.parse_calendar(body)
        except ValueError:
            return None  # Radicale answers malformed bodies itself
        events = list(cal.walk("VEVENT"))
        if not events:
            return None
        uid = str(events[0].get("UID", ""))
        summary = str(events[0].get("SUMMARY", "appointment"))
        with order:
            number = decided[uid] = next(numbers)
        if far is not None and again:  # left by a stop: checked once the index is there, however long it takes
            far.submit(lambda: check(busy.candidate(cal), uid, summary, "warn", number, wait=-1), (uid, body))
            return None
        prepared = busy.candidate(cal)
        if current == "warn" and far is not None and prepared.far:  # off the request: waits for an index being built
            far.submit(lambda: check(prepared, uid, summary, current, number, wait=-1), (uid, body))
            return None
        return check(prepared, uid, summary, current, number)

    def check_again(body: bytes) -> None:
        """A booking whose far check a stop interrupted: it was let through in mode "warn",
        so only its warning is owed, whatever the mode is now (but "off")."""
        if mode() != "off":
            decide(body, "warn", again=True)

    if far is not None:
        far.again = check_again
        far.owe = lambda booking: state.leave_far_checks([booking])
        far.paid = lambda booking: state.far_check_done(*booking)
    return guard


def make_freebusy(busy: BusySources) -> Callable[[str, datetime, datetime], str]:
    """A free-busy REPORT answers for the collection it is sent to (RFC 4791 §7.10): its own
    events, by the same busy rules; `busy/` answers for every source together. Tentative time
    is reported as such (FBTYPE=BUSY-TENTATIVE), so a client can tell it from firm busy time,
    and Outlook's out of office as FBTYPE=BUSY-UNAVAILABLE."""

    def freebusy(collection_path: str, start: datetime, end: datetime) -> str:
        parts = split_path(collection_path)
        collection = parts[1] if len(parts) == 2 else ""
        only = None if collection == BUSY else collection
        firm, tentative = busy.busy_kinds(start, end, only=only)
        away = busy.unavailable(start, end, only=only)
        return engine.to_vfreebusy(firm, start, end, dtstamp=datetime.now(UTC), tentative=tentative, unavailable=away)

    return freebusy
