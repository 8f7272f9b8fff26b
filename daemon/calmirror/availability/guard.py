"""The double-booking guard and the free-busy answer of the local server.

Both use the same busy rules as `calmirror availability`, and the guard and `busy/` the same
combined busy set, so a client, the CLI and the CRM never disagree about when the user is free.
The guard parses only the candidate and asks the busy index for its window: no lock is held
across other writers, and no other event is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from calmirror.availability import engine
from calmirror.availability.sources import BusySources
from calmirror.local.layout import APPOINTMENTS, BUSY, split_path
from calmirror.state import State

log = logging.getLogger("calmirror.guard")
GUARD_WAIT_S = 5.0


def make_guard(busy: BusySources, state: State, mode: Callable[[], str]) -> Callable[[str, bytes], str | None]:
    def guard(collection: str, body: bytes) -> str | None:
        current = mode()
        if current == "off" or collection != APPOINTMENTS:
            return None
        try:
            cal = engine.parse_calendar(body)
        except ValueError:
            return None  # Radicale answers malformed bodies itself
        events = list(cal.walk("VEVENT"))
        if not events:
            return None
        uid = str(events[0].get("UID", ""))
        summary = str(events[0].get("SUMMARY", "appointment"))
        hits = busy.overlaps(cal, wait=GUARD_WAIT_S)
        if hits is None:  # the busy index is being built: never keep a client waiting
            log.warning("double-booking check skipped for %s: calendars still loading", uid)
            return None
        if not hits:
            state.clear_guard_warning(uid)
            return None
        start, end = hits[0]
        when = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
        if current == "reject":
            log.info("guard rejected %s: overlaps busy time %s", uid, when)
            return f"overlaps busy time {when}; choose a free time"
        state.add_guard_warning(uid, summary, start.isoformat(), end.isoformat())
        log.warning("double booking: %s overlaps busy time %s", summary, when)
        return None

    return guard


def make_freebusy(busy: BusySources) -> Callable[[str, datetime, datetime], str]:
    """A free-busy REPORT answers for the collection it is sent to (RFC 4791 §7.10): its own
    events, by the same busy rules; `busy/` answers for every source together."""

    def freebusy(collection_path: str, start: datetime, end: datetime) -> str:
        parts = split_path(collection_path)
        collection = parts[1] if len(parts) == 2 else ""
        intervals = busy.busy(start, end) if collection == BUSY else busy.busy_in(collection, start, end)
        return engine.to_vfreebusy(intervals, start, end, dtstamp=datetime.now(UTC))

    return freebusy
