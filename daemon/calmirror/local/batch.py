"""Which changes of one mirror batch may be applied: pure, so the UID rules are tested
without a store (`bulk` writes what this accepts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from calmirror.local.items import PreparedItem, check_href


@dataclass
class BatchPlan:
    upserts: list[PreparedItem] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def plan_batch(
    uid_of: Mapping[str, str],
    owner_of: Mapping[str, str],
    upserts: Sequence[PreparedItem],
    deletes: Sequence[str],
) -> BatchPlan:
    """Which changes may be applied so that no two items of the collection share a UID.

    `uid_of` maps each href in the collection to its UID and `owner_of` each UID to an href
    holding it; only the batch's own hrefs and UIDs are looked up, so the cost follows the
    batch, not the collection. Deletes run first, so a UID may move from one href to another
    within a batch. Deleting an href that is not there is a no-op (a retried batch must not
    fail). An upsert whose UID another item keeps is refused with the href of that item;
    refusing it keeps its own old item, whose UID may in turn block another upsert, hence
    the loop.
    """
    plan = BatchPlan()
    gone: set[str] = set()
    for href in dict.fromkeys(deletes):
        problem = check_href(href)
        if problem:
            plan.rejected.append((href, problem))
        elif href in uid_of:
            gone.add(href)
            plan.deletes.append(href)
    pending = _first_per_href(upserts, plan.rejected)
    while True:
        replaced = {item.href for item in pending}
        # The owners that stay: an href the batch deletes or rewrites gives its UID up.
        owners: dict[str, str] = {}
        for item in pending:
            holder = owner_of.get(item.uid)
            if holder is not None and holder not in gone and holder not in replaced:
                owners.setdefault(item.uid, holder)
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
