"""The plain data calmirror reasons about: accounts, calendars, map entries, appointments, outbox rows.

No I/O and no third-party imports, so the pure planners and the availability engine can take
these types without pulling in SQLite, HTTP or Radicale.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    apple_id: str
    server: str
    principal_url: str
    home_url: str
    connected_at: float


@dataclass(frozen=True)
class CalendarRow:
    id: str
    url: str
    name: str
    color: str | None
    components: tuple[str, ...]
    writable: bool

    @property
    def is_event_calendar(self) -> bool:
        return "VEVENT" in self.components


@dataclass(frozen=True)
class MirrorEntry:
    href: str
    etag: str
    uid: str
    local_href: str


@dataclass(frozen=True)
class Appointment:
    uid: str
    local_href: str | None
    local_etag: str | None
    remote_calendar: str | None
    remote_href: str | None
    remote_etag: str | None
    pushed_etag: str | None


@dataclass(frozen=True)
class OutboxRow:
    uid: str
    collection: str
    seq: int
    state: str
    attempts: int
    next_attempt: float
    last_error: str | None
    enqueued_at: float
