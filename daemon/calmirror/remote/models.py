"""Plain data the remote hands to the rest of calmirror: no HTTP, no XML inside."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    principal_url: str
    home_url: str  # absolute, on the partition host (iCloud: https://pNN-caldav.icloud.com:443/<DSID>/calendars/)


@dataclass(frozen=True)
class RemoteCalendar:
    id: str  # decoded last path segment: "home", an uppercase UUID, 64 hex
    url: str  # canonical absolute URL with a trailing slash
    name: str  # displayname, or the id when the server gives none
    color: str | None  # Apple calendar-color ("#FF2968FF")
    components: tuple[str, ...]  # ("VEVENT",) or ("VTODO",); all three when the server is silent
    writable: bool  # write, write-content or all among the user's privileges (True when not reported)
    ctag: str | None
    sync_token: str | None


@dataclass(frozen=True)
class SyncChanges:
    token: str
    changed: dict[str, str]  # canonical href -> ETag
    deleted: list[str]  # canonical hrefs
    full: bool  # the listing is complete: whatever it does not name is gone
    truncated: bool = False  # the server stopped early (507); sync again from `token` for the rest


@dataclass(frozen=True)
class FetchedItem:
    href: str  # canonical
    etag: str
    body: str
