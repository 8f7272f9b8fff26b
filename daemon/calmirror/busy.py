"""Feeding the pure availability engine from the local store.

Sources are `appointments/`, `blocked/` and every mirror. Parsed calendars are cached per
item and refreshed through each collection's sync token, so the double-booking guard on a
client's PUT and a free-busy REPORT re-parse only what changed, not 10,000 events.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from calmirror import availability
from calmirror.config import Settings
from calmirror.local.store import LocalStore
from calmirror.state import APPOINTMENTS, State

log = logging.getLogger("calmirror.busy")
BLOCKED = "blocked"


@dataclass
class _Cached:
    token: str | None = None
    calendars: dict[str, Any] = field(default_factory=dict)  # href -> icalendar.Calendar


class BusySources:
    def __init__(self, store: LocalStore, state: State, settings: Settings) -> None:
        self.store, self.state, self.settings = store, state, settings
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def rules(self) -> availability.Rules:
        acct = self.state.account()
        me = {acct.apple_id.lower()} if acct else set()
        a = self.settings.availability
        return availability.Rules(tz=a.zone, me=frozenset(me | set(a.aliases)), tentative_busy=a.tentative_busy)

    def collections(self) -> list[tuple[str, str, bool]]:
        """(collection, source name, all-day events busy) for every source of busy time."""
        a = self.settings.availability
        out = [(APPOINTMENTS, "appointments", a.allday_busy), (BLOCKED, "blocked", a.allday_busy)]
        for row in self.state.mirrors():
            per = self.settings.calendar(row["calendar_id"]).allday_busy
            out.append((f"icloud-{row['slug']}", f"icloud-{row['slug']}",
                        a.allday_busy if per is None else per))
        return out

    def _refresh(self, collection: str) -> dict[str, Any]:
        cached = self._cache.setdefault(collection, _Cached())
        try:
            token, changed, full = self.store.changes(collection, cached.token)
        except Exception as exc:
            log.debug("busy: %s unreadable: %s", collection, exc)
            return {}
        if full or cached.token is None:
            cached.calendars = {}
            changed = list(self.store.items(collection))
        for href in changed:
            text = self.store.item(collection, href)
            if text is None:
                cached.calendars.pop(href, None)
                continue
            try:
                cached.calendars[href] = availability.parse_calendar(text)
            except ValueError as exc:
                log.debug("busy: %s/%s skipped: %s", collection, href, exc)
                cached.calendars.pop(href, None)
        cached.token = token
        return cached.calendars

    def sources(self, *, skip_uid: str | None = None) -> list[availability.Source]:
        exclude = self.state.appointment_uids()
        with self._lock:
            result = []
            for collection, name, allday in self.collections():
                calendars = list(self._refresh(collection).values())
                mirror = collection.startswith("icloud-")
                uids = exclude if mirror else frozenset()
                if skip_uid:
                    uids = frozenset(uids | {skip_uid})
                result.append(availability.Source(name=name, calendars=calendars, allday_busy=allday,
                                                  exclude_uids=uids))
            return result

    def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        return availability.busy_intervals(self.sources(), start, end, self.rules())
