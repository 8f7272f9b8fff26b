"""Where a mirror's resources come from, and how they are fetched so that one item whose
answer cannot be read does not stop a calendar's pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from calmirror.errors import BadRemoteData, Conflict, Forbidden, NotFound, PreconditionFailed
from calmirror.remote import FetchedItem, SyncChanges


class Source(Protocol):
    """Where a mirror's resources come from: an iCloud calendar (`ICloudClient`), or a
    subscribed feed already split into resources (`feeds.FeedListing`)."""

    def sync(self, calendar_url: str, token: str | None) -> SyncChanges: ...

    def fetch(
        self, calendar_url: str, hrefs_wanted: Sequence[str], *, batch: int = ...
    ) -> tuple[list[FetchedItem], list[str]]: ...


@runtime_checkable
class OneByOne(Protocol):
    """A source that can also GET one resource (an iCloud calendar; a feed cannot)."""

    def get(self, href: str) -> FetchedItem: ...


def _one_by_one(client: Source, href: str) -> FetchedItem | None:
    """The resource by a GET of its own, for an item no multiget answer can carry: bytes that
    are not UTF-8, or a NUL, which XML cannot hold (the answer is then not XML at all), are
    plain bytes in a GET's body. None when that fails too."""
    if not isinstance(client, OneByOne):
        return None
    try:
        item = client.get(href)
    except (BadRemoteData, NotFound, Forbidden, Conflict, PreconditionFailed):
        return None
    return FetchedItem(href, item.etag, item.body)


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
            alone = _one_by_one(client, hrefs[0]) if hrefs else None
            if alone is not None:
                return [alone], [], {}
            reason = exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
            return [], [], dict.fromkeys(hrefs, f"unreadable answer from iCloud: {reason}"[:200])
    half = len(hrefs) // 2
    first, second = fetch_halving(client, url, hrefs[:half]), fetch_halving(client, url, hrefs[half:])
    return first[0] + second[0], first[1] + second[1], {**first[2], **second[2]}
