"""Feeding the pure availability engine: appointments and blocked time from the local store,
mirrors from calmirror's own exact-text store.

A mirror's busy time comes from iCloud's exact text of each resource, kept in the state
database, not from the Radicale collection: Radicale may hold a compatible copy, or
nothing at all for an object it refused, and busy time must not depend on that. Parsed
calendars are cached per item; `appointments/` and `blocked/` are refreshed through their
sync tokens, mirrors through the calendar's generation in the state database (one
indexed query when nothing changed), so the double-booking guard on a client's PUT and a
free-busy REPORT re-parse only what changed, not 10,000 events.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calmirror.availability import engine
from calmirror.config import Settings
from calmirror.local.layout import APPOINTMENTS, BLOCKED, BUSY, mirror_name
from calmirror.local.store import LocalStore
from calmirror.state import State

log = logging.getLogger("calmirror.busy")
PUSHED_IN_ICLOUD = "appointments as in iCloud"


@dataclass
class _Cached:
    token: str | None = None  # a local collection's sync token
    generation: int | None = None  # a mirror's generation in the exact-text store
    calendars: dict[str, Any] = field(default_factory=dict)  # href -> icalendar.Calendar


class BusySources:
    def __init__(self, store: LocalStore, state: State, settings: Settings) -> None:
        self.store, self.state, self.settings = store, state, settings
        self._cache: dict[str, _Cached] = {}
        self._versions: dict[tuple[str, str], Any] = {}  # (uid, etag) -> iCloud's differing version, parsed
        self._lock = threading.Lock()

    def mark_changed(self, collection: str) -> None:
        """Called by the mirror writer in this process. Nothing to do: a mirror's generation in
        the state database already says it changed, also when another process wrote it."""

    def rules(self) -> engine.Rules:
        me = {acct.apple_id.lower() for acct in self.state.accounts()}  # invitations to any account are yours
        a = self.settings.availability
        return engine.Rules(
            tz=a.zone, me=frozenset(me | set(a.aliases)), tentative_busy=a.tentative_busy, travel_time=a.travel_time
        )

    def collections(self) -> list[tuple[str, str, bool, str | None]]:
        """(collection, source name, all-day events busy, iCloud calendar id of a mirror) for
        every source of busy time."""
        a = self.settings.availability
        out: list[tuple[str, str, bool, str | None]] = [
            (APPOINTMENTS, "appointments", a.allday_busy, None),
            (BLOCKED, "blocked", a.allday_busy, None),
        ]
        for row in self.state.mirrors():
            per = self.settings.calendar(row.calendar_id).allday_busy
            name = mirror_name(str(row.slug))
            out.append((name, name, a.allday_busy if per is None else per, row.calendar_id))
        return out

    def _refresh_mirror(self, collection: str, calendar_id: str) -> dict[str, Any]:
        """The parsed exact texts of one mirrored calendar, re-parsing only what changed."""
        cached = self._cache.setdefault(f"mirror of {calendar_id}", _Cached())
        try:
            change = self.state.mirror_texts_since(calendar_id, cached.generation)
        except Exception as exc:
            log.debug("busy: texts of %s unreadable: %s", collection, exc)
            return cached.calendars
        if change.present is None:
            return cached.calendars
        for href in [href for href in cached.calendars if href not in change.present]:
            del cached.calendars[href]
        self._parse_into(cached, collection, dict(change.texts))
        cached.generation = change.generation
        return cached.calendars

    def _parse_into(self, cached: _Cached, collection: str, texts: dict[str, str | None]) -> None:
        for href, text in texts.items():
            if text is None:
                cached.calendars.pop(href, None)
                continue
            try:
                cached.calendars[href] = engine.parse_calendar(text)
            except ValueError as exc:
                log.debug("busy: %s/%s skipped: %s", collection, href, exc)
                cached.calendars.pop(href, None)

    def _refresh(self, collection: str) -> dict[str, Any]:
        cached = self._cache.setdefault(collection, _Cached())
        try:
            token, changed, full = self.store.changes(collection, cached.token)
            if full or cached.token is None:
                cached.calendars = {}
                texts: dict[str, str | None] = dict(self.store.items(collection))
            else:
                texts = self.store.items_named(collection, changed)
        except Exception as exc:
            log.debug("busy: %s unreadable: %s", collection, exc)
            return {}
        self._parse_into(cached, collection, texts)
        cached.token = token
        return cached.calendars

    def warm(self) -> None:
        """Parse every source once, off the request path, so the first client write is not the one
        that waits for 10,000 mirrored events to be read."""
        self.sources()

    def sources(self, *, skip_uid: str | None = None, wait: float = -1) -> list[engine.Source] | None:
        """The parsed sources; None when `wait` seconds pass while another thread is still parsing.

        Events of a mirror whose UID is a local appointment are left out: `appointments/`
        holds the local version, and iCloud's counts separately while the two differ."""
        exclude = self.state.appointment_uids()
        if not self._lock.acquire(timeout=wait):
            return None
        try:
            result = []
            for collection, name, allday, calendar_id in self.collections():
                parsed = self._refresh_mirror(collection, calendar_id) if calendar_id else self._refresh(collection)
                uids = exclude if calendar_id is not None else frozenset()
                if skip_uid:
                    uids = frozenset(uids | {skip_uid})
                result.append(engine.Source(name, list(parsed.values()), allday_busy=allday, exclude_uids=uids))
            result.append(self._pushed_in_icloud(skip_uid))
            return result
        finally:
            self._lock.release()

    def _pushed_in_icloud(self, skip_uid: str | None) -> engine.Source:
        """iCloud's versions of pushed appointments that differ from the local ones: mirrors
        leave pushed appointments out, and `appointments/` has the local version, so while
        the two differ (moved on a phone, not yet brought in or overridden) both count."""
        parsed: dict[tuple[str, str], Any] = {}
        for version in self.state.differing_remote_versions():
            key = (version.uid, version.etag)
            if version.body is None:
                continue
            if key not in self._versions:
                try:
                    self._versions[key] = engine.parse_calendar(version.body)
                except ValueError as exc:
                    log.debug("busy: iCloud's version of %s skipped: %s", version.uid, exc)
                    continue
            parsed[key] = self._versions[key]
        self._versions = parsed
        a = self.settings.availability
        return engine.Source(
            name=PUSHED_IN_ICLOUD,
            calendars=list(parsed.values()),
            allday_busy=a.allday_busy,
            exclude_uids=frozenset({skip_uid} if skip_uid else ()),
        )

    def source_of(self, collection: str) -> engine.Source | None:
        """One collection's own content as a source (None for a collection that holds no busy
        time of its own). Unlike in `sources()`, a mirror keeps every event it holds: a
        free-busy REPORT on a collection answers for exactly what that collection contains."""
        for name, label, allday, calendar_id in self.collections():
            if name != collection:
                continue
            with self._lock:
                parsed = self._refresh_mirror(name, calendar_id) if calendar_id else self._refresh(name)
                return engine.Source(label, list(parsed.values()), allday_busy=allday)
        return None

    def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The combined busy time of every source: what `calmirror availability` shows."""
        return engine.busy_intervals(self.sources() or [], start, end, self.rules())

    def busy_in(self, collection: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The busy time of one collection's own events, by the same rules."""
        source = self.source_of(collection)
        return engine.busy_intervals([source] if source else [], start, end, self.rules())


FREEBUSY_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
)


def from_vfreebusy(text: bytes | str) -> list[tuple[datetime, datetime]]:
    """Busy periods of a VFREEBUSY answer (FBTYPE=BUSY and its tentative/unavailable kinds)."""
    import icalendar

    cal = icalendar.Calendar.from_ical(text)
    busy: list[tuple[datetime, datetime]] = []
    for component in cal.walk("VFREEBUSY"):
        props = component.get("FREEBUSY", [])
        for prop in props if isinstance(props, list) else [props]:
            if str(prop.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            for start, end in prop.dt if isinstance(prop.dt, list) else [prop.dt]:
                stop = end if isinstance(end, datetime) else start + end
                busy.append((start.astimezone(UTC), stop.astimezone(UTC)))
    return sorted(busy)


def ask_daemon(
    url: str, username: str, password: str, start: datetime, end: datetime, timeout: float = 30.0
) -> list[tuple[datetime, datetime]] | None:
    """The running daemon keeps every calendar parsed; asking it is milliseconds where a cold
    process parses 10,000 events for seconds. None when it cannot answer."""
    from calmirror.local import loopback

    fmt = "%Y%m%dT%H%M%SZ"
    body = FREEBUSY_QUERY.format(start=start.astimezone(UTC).strftime(fmt), end=end.astimezone(UTC).strftime(fmt))
    answer = loopback.ask(
        "REPORT",
        f"{url}{username}/{BUSY}/",
        body=body.encode(),
        auth=(username, password),
        headers={"Depth": "1", "Content-Type": "application/xml"},
        timeout=timeout,
    )
    if answer is None or answer.status != 200:
        return None
    try:
        return from_vfreebusy(answer.body)
    except ValueError:
        return None
