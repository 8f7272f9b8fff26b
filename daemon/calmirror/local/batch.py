"""Applying one batch of mirror changes: decide what is accepted, then how to write it.

Pure planning (`plan_batch`) is separate from writing so the UID rules can be tested
without a store. Writing picks the cheaper of two ways: Radicale's per-item
`upload`/`delete` (about 4 ms plus 4.5 µs per item already in the collection, per change,
measured here) or rewriting the whole collection in one atomic swap (`bulk`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from radicale.storage import multifilesystem

from calmirror.local import bulk
from calmirror.local.items import PreparedItem, check_href

# Measured on a 2-vCPU ext4 machine; only their ratio matters.
_PER_CHANGE_MS = 4.0
_PER_CHANGE_PER_ITEM_MS = 0.0045
_REBUILD_FIXED_MS = 40.0
_REBUILD_PER_ITEM_MS = 0.2


@dataclass
class BatchPlan:
    upserts: list[PreparedItem] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def plan_batch(current_uids: dict[str, str], upserts: Sequence[PreparedItem], deletes: Sequence[str]) -> BatchPlan:
    """Which changes may be applied so that no two items of the collection share a UID.

    `current_uids` maps each href in the collection to its UID. Deletes run first, so a
    UID may move from one href to another within a batch. Deleting an href that is not
    there is a no-op (a retried batch must not fail). An upsert whose UID another item
    keeps is refused with the href of that item; refusing it keeps its own old item, whose
    UID may in turn block another upsert, hence the loop.
    """
    plan = BatchPlan()
    gone: set[str] = set()
    for href in dict.fromkeys(deletes):
        problem = check_href(href)
        if problem:
            plan.rejected.append((href, problem))
        elif href in current_uids:
            gone.add(href)
            plan.deletes.append(href)
    pending = _first_per_href(upserts, plan.rejected)
    while True:
        replaced = {item.href for item in pending}
        owners = {uid: href for href, uid in current_uids.items() if href not in gone and href not in replaced}
        accepted: list[PreparedItem] = []
        bounced: list[tuple[str, str]] = []
        for item in pending:
            owner = owners.setdefault(item.uid, item.href)
            if owner == item.href:
                accepted.append(item)
            else:
                bounced.append((item.href, f"UID {item.uid!r} is already used by {owner}"))
        plan.rejected.extend(bounced)
        if not bounced:
            plan.upserts = accepted
            return plan
        pending = accepted


def _first_per_href(upserts: Sequence[PreparedItem], rejected: list[tuple[str, str]]) -> list[PreparedItem]:
    seen: set[str] = set()
    unique = []
    for item in upserts:
        if item.href in seen:
            rejected.append((item.href, "href appears twice in one batch"))
            continue
        seen.add(item.href)
        unique.append(item)
    return unique


def prefer_rebuild(changes: int, size_now: int, size_after: int) -> bool:
    """True when rewriting the whole collection is cheaper than item-by-item writes."""
    incremental = changes * (_PER_CHANGE_MS + _PER_CHANGE_PER_ITEM_MS * size_now)
    rebuild = _REBUILD_FIXED_MS + _REBUILD_PER_ITEM_MS * size_after
    return rebuild < incremental


def write_incremental(collection: multifilesystem.Collection, plan: BatchPlan) -> None:
    """Radicale's own per-item writes; one that fails is reported, the rest go on."""
    for href in plan.deletes:
        try:
            collection.delete(href)
        except (OSError, ValueError) as error:
            plan.rejected.append((href, f"could not be deleted: {error}"))
    for item in plan.upserts:
        try:
            collection.upload(item.href, item.to_item(collection.path))
        except (OSError, ValueError, RuntimeError) as error:
            plan.rejected.append((item.href, f"could not be written: {error}"))


def write_rebuild(
    storage: multifilesystem.Storage,
    collection: multifilesystem.Collection,
    existing: dict[str, PreparedItem],
    plan: BatchPlan,
) -> None:
    """The whole new content in one atomic swap; items carried over keep their cache entry."""
    changed = {item.href for item in plan.upserts} | set(plan.deletes)
    kept = [item for href, item in existing.items() if href not in changed]
    bulk.replace_collection(
        storage,
        collection.path,
        dict(collection.get_meta()),
        kept + plan.upserts,
        cached=frozenset(item.href for item in kept),
    )
