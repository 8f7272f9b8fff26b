"""A full listing that misses a resource is not proof that it is gone.

iCloud lists a resource written seconds ago late (ICLOUD.md #17, eventual consistency): a
first sync, a token iCloud no longer knew, or a stale token answered with a full listing
can all miss an event a phone just changed. Taken as a deletion, the mirror would drop its
busy time until the next listing shows it again. A direct read of the href is the reliable
one, so what a full listing misses is fetched first, and only what answers 404 is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from calmirror.model import MirrorEntry
from calmirror.remote import FetchedItem, SyncChanges

log = logging.getLogger("calmirror.mirror")

Fetch = Callable[[Sequence[str]], tuple[list[FetchedItem], list[str]]]


def confirm_absent(fetch: Fetch, changes: SyncChanges, gone: Iterable[str], batch: int) -> SyncChanges:
    """`changes` (a full listing) with every href of `gone` (what the listing would delete)
    that it did not name deleted but a fetch still finds added back as listed, with the ETag
    the fetch saw; `changes` itself when there are none. One multiget per `batch` hrefs."""
    named = set(changes.deleted)
    absent = [href for href in gone if href not in named and href not in changes.changed]
    found: list[FetchedItem] = []
    for start in range(0, len(absent), max(1, batch)):
        found += fetch(absent[start : start + batch])[0]
    if not found:
        return changes
    log.info("%d item(s) missing from a full listing are still there (a late listing); kept", len(found))
    return replace(changes, changed={**changes.changed, **{item.href: item.etag for item in found}})


def still_there(
    fetch: Callable[[list[str]], tuple[list[FetchedItem], list[str], dict[str, str]]], known: Mapping[str, MirrorEntry]
) -> Fetch:
    """A `Fetch` over the mirror's multiget (items, gone, unreadable): an answer it cannot
    read still shows the item is there, at the ETag the mirror holds."""

    def fetched(hrefs: Sequence[str]) -> tuple[list[FetchedItem], list[str]]:
        items, missing, unreadable = fetch(list(hrefs))
        return items + [FetchedItem(href, known[href].etag, "") for href in unreadable], missing

    return fetched
