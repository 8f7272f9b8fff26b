"""The UID rule of one mirror batch, looked up per item instead of over the whole collection,
decides exactly as the whole-collection rule it replaced (kept here as the reference)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from calmirror.local.batch import plan_batch
from calmirror.local.items import PreparedItem

HREFS = [f"h{n}.ics" for n in range(6)]
UIDS = [f"u{n}" for n in range(5)]


def item(href: str, uid: str) -> PreparedItem:
    return PreparedItem(href, f"text {href} {uid}", '"e"', uid, "VCALENDAR", "VEVENT", (0, 1))


def reference(current: dict[str, str], upserts: Sequence[PreparedItem], deletes: Sequence[str]) -> tuple:
    """The whole-collection rule as it was: owners of every UID, recomputed per round."""
    rejected: list[tuple[str, str]] = []
    gone = {href for href in dict.fromkeys(deletes) if href in current}
    seen: set[str] = set()
    pending = []
    for one in upserts:
        if one.href in seen:
            rejected.append((one.href, "href appears twice in one batch"))
            continue
        seen.add(one.href)
        pending.append(one)
    while True:
        replaced = {one.href for one in pending}
        owners = {uid: href for href, uid in current.items() if href not in gone and href not in replaced}
        accepted, bounced = [], []
        for one in pending:
            owner = owners.setdefault(one.uid, one.href)
            (accepted if owner == one.href else bounced).append(one)
        rejected.extend((one.href, "bounced") for one in bounced)
        if not bounced:
            return sorted(one.href for one in accepted), sorted(gone), sorted(h for h, _ in rejected)
        pending = accepted


collections = st.lists(st.sampled_from(UIDS), unique=True, max_size=len(HREFS)).flatmap(
    lambda uids: st.permutations(HREFS).map(lambda hrefs: dict(zip(hrefs, uids, strict=False)))
)
batches = st.lists(st.tuples(st.sampled_from(HREFS), st.sampled_from(UIDS)), max_size=8)


@given(collections, batches, st.lists(st.sampled_from(HREFS), max_size=4))
def test_lookups_decide_as_the_whole_collection_rule(
    current: dict[str, str], upserts: list[tuple[str, str]], deletes: list[str]
) -> None:
    items = [item(href, uid) for href, uid in upserts]
    owner_of = {uid: href for href, uid in current.items()}
    plan = plan_batch(current, owner_of, items, deletes)
    got = (sorted(one.href for one in plan.upserts), sorted(plan.deletes), sorted(h for h, _ in plan.rejected))
    assert got == reference(current, items, deletes)
    # and the collection it leaves gives no UID to two items
    after = {href: uid for href, uid in current.items() if href not in plan.deletes}
    after.update((one.href, one.uid) for one in plan.upserts)
    assert len(set(after.values())) == len(after)
