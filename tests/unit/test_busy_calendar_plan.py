"""The pure part of `busy/`: which blocks to add and remove, and what a block looks like."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability.busy_calendar import (
    HORIZON_AHEAD,
    HORIZON_BACK,
    block_href,
    block_of,
    block_text,
    horizon,
    next_move,
    plan_busy,
    regions,
)
from calmirror.availability.intervals import Interval, merge

BASE = datetime(2026, 12, 1, tzinfo=UTC)
blocks = st.lists(
    st.tuples(st.integers(0, 500), st.integers(1, 50)).map(
        lambda p: (BASE + timedelta(minutes=15 * p[0]), BASE + timedelta(minutes=15 * (p[0] + p[1])))
    ),
    max_size=20,
).map(merge)


@given(old=blocks, new=blocks)
def test_applying_the_plan_leaves_exactly_the_new_blocks(old: list, new: list) -> None:
    present = {block_href(b) for b in old}
    change = plan_busy(new, present)
    after = (present - set(change.deletes)) | {href for href, _ in change.upserts}
    assert after == {block_href(b) for b in new}
    assert not {href for href, _ in change.upserts} & present  # an unchanged block is never rewritten
    assert set(change.deletes) <= present


@given(found=blocks)
def test_the_same_blocks_plan_nothing(found: list) -> None:
    assert plan_busy(found, {block_href(b) for b in found}).empty


def test_a_block_is_a_titleless_busy_event_named_by_its_times() -> None:
    block = (datetime(2026, 12, 3, 9, tzinfo=UTC), datetime(2026, 12, 3, 10, 0, 0, 500, tzinfo=UTC))
    text = block_text(block)
    assert text == block_text(block)  # the text, hence the ETag, depends on the block alone
    (vevent,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Busy" and str(vevent["TRANSP"]) == "OPAQUE"
    assert vevent["DTSTART"].dt == block[0]
    assert vevent["DTEND"].dt == datetime(2026, 12, 3, 10, 0, 1, tzinfo=UTC)  # rounded up, never shrunk
    assert block_href(block) == "busy-20261203T090000Z-20261203T100001Z.ics"
    assert str(vevent["UID"]) == "busy-20261203T090000Z-20261203T100001Z@calmirror"


def test_the_horizon_moves_at_utc_midnight_only() -> None:
    morning, night = datetime(2026, 12, 7, 0, 0, 1, tzinfo=UTC), datetime(2026, 12, 7, 23, 59, tzinfo=UTC)
    assert horizon(morning) == horizon(night)
    day = datetime(2026, 12, 7, tzinfo=UTC)
    assert horizon(night) == (day - HORIZON_BACK, day + HORIZON_AHEAD)
    assert next_move(night) == datetime(2026, 12, 8, tzinfo=UTC)
    assert horizon(next_move(night)) != horizon(night)


spans_of_items = st.lists(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(1, 50)).map(
            lambda p: (BASE + timedelta(minutes=15 * p[0]), BASE + timedelta(minutes=15 * (p[0] + p[1])))
        ),
        max_size=4,
    ),
    min_size=1,
    max_size=12,
)


def _clip(spans: list[Interval], lo: datetime, hi: datetime) -> list[Interval]:
    return merge((max(a, lo), min(b, hi)) for a, b in spans if a < hi and b > lo)


@given(items=spans_of_items, replaced=st.data())
def test_refreshing_only_around_changes_gives_what_a_whole_refresh_gives(items: list, replaced: st.DataObject) -> None:
    """Items change (their spans replaced); `busy/` recomputed only in `regions` around the
    changed items' old and new spans ends up holding exactly the blocks of everything."""
    old_blocks = merge(s for item in items for s in item)
    changed = replaced.draw(st.sets(st.integers(0, len(items) - 1)))
    new_items = [
        replaced.draw(spans_of_items.map(lambda x: x[0])) if i in changed else it for i, it in enumerate(items)
    ]
    ranges = [s for i in changed for s in [*items[i], *new_items[i]]]
    all_new = [s for item in new_items for s in item]
    present = {block_href(b) for b in old_blocks}
    for lo, hi in regions(ranges, [b for b in (block_of(h) for h in present) if b is not None]):
        inside = [h for h in present if (b := block_of(h)) is not None and b[0] <= hi and b[1] >= lo]
        change = plan_busy(_clip(all_new, lo, hi), inside)
        present = (present - set(change.deletes)) | {href for href, _ in change.upserts}
    assert present == {block_href(b) for b in merge(all_new)}


def test_a_block_href_reads_back_as_its_block() -> None:
    block = (BASE + timedelta(hours=9), BASE + timedelta(hours=10, minutes=30))
    assert block_of(block_href(block)) == block
    assert block_of("other.ics") is None
