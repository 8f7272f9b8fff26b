"""Where a mirror's resources come from, and how they are fetched so that one item whose
answer cannot be read does not stop a calendar's pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from calmirror.errors import BadRemoteData
from calmirror.remote import FetchedItem, SyncChanges


class Source(Protocol):
    """Where a mirror's resources come from: an iCloud calendar (`ICloudClient`), or a
    subscribed feed already split into resources (`feeds.FeedListing`)."""

    def sync(self, calendar_url: str, token: str | None) -> SyncChanges: ...

    def fetch(
        self, calendar_url: str, hrefs_wanted: Sequence[str], *, batch: int = ...
    ) -> tuple[list[FetchedItem], list[str]]: ...


def fetch_halving(
    client: Source,
    url: str,
    hrefs: list[str],
) -> tuple[list[FetchedItem], list[str], dict[str, str]]:
    """One multiget; when its answer is unreadable (cut off, not XML, a DOCTYPE), halve the
    batch until the item that breaks it is alone, so one bad item cannot stop a calendar.
    Returns the items, the hrefs gone, and the unreadable hrefs with the reason."""
    try:
        items, missing = client.fetch(url, hrefs, batch=max(1, len(hrefs)))
        return items, missing, {}
    except BadRemoteData as exc:
        if len(hrefs) <= 1:
            reason = exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
            return [], [], dict.fromkeys(hrefs, f"unreadable answer from iCloud: {reason}"[:200])
    half = len(hrefs) // 2
    first, second = fetch_halving(client, url, hrefs[:half]), fetch_halving(client, url, hrefs[half:])
    return first[0] + second[0], first[1] + second[1], {**first[2], **second[2]}
