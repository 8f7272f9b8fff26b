"""Plain data the remote hands to the rest of calmirror: no HTTP, no XML inside."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    principal_url: str
    home_url: str  # absolute, on the partition host (iCloud: https://pNN-caldav.icloud.com:443/<DSID>/calendars/)
    # The principal's calendar-user-address-set: every address the user is invited under
    # (iCloud: mailto: aliases that often differ from the Apple ID, the principal's URL, urn:uuid:).
    addresses: tuple[str, ...] = ()


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
