"""The walk Radicale's time-range filter makes through a series, recorded so later windows
are decided in SQL (see `range_query`), and the one query shape whose full filter is that walk.

Radicale's `time_range_match` visits an item's overrides, then its series in order, until an
occurrence overlaps or the series starts past the window; `record_occurrences` makes the
same walk once over a wide span and keeps what it visited.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from radicale import item as radicale_item
from radicale import xmlutils
from radicale.item import filter as radicale_filter

from calmirror.model import Occurrences

#: A walk longer than this is not recorded (Radicale decides that item for that window).
MAX_VISITS = 100_000

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def record_occurrences(item: radicale_item.Item, low: int, high: int) -> Occurrences | None:
    """The time ranges Radicale's `time_range_match` would visit in `item`, for every window
    inside [low, high]; None when the walk is too long to record (not stored)."""
    ranges: list[tuple[int, int]] = []
    last_start: int | None = None
    in_order = True
    visits = 0
    too_long = False

    def range_fn(range_start: dt.datetime, range_end: dt.datetime, is_recurrence: bool) -> bool:
        nonlocal last_start, in_order, visits, too_long
        visits += 1
        if visits > MAX_VISITS:
            too_long = True
            return True
        begin, finish = _seconds(range_start), _seconds(range_end)
        if not is_recurrence:
            if last_start is not None and begin < last_start:
                in_order = False
            last_start = begin
        if finish > low:  # one that ends by `low` overlaps no window starting at or after it
            ranges.append((begin, finish))
        # Radicale's walk stops at the first series start past its window; this one past `high`.
        return not is_recurrence and high < begin

    try:
        radicale_filter.visit_time_ranges(item.vobject_item, "VEVENT", range_fn, lambda _: False)
    except Exception:
        return Occurrences(item.etag, low, high, exact=False, ranges=())
    if too_long:
        return None
    return Occurrences(item.etag, low, high, exact=in_order, ranges=tuple(ranges) if in_order else ())


def _seconds(moment: dt.datetime) -> int:
    """Exact POSIX seconds; a fraction of a second raises (the item then goes to Radicale)."""
    delta = moment - _EPOCH
    if delta.microseconds:
        raise ValueError("a time with a fraction of a second")
    return delta.days * 86_400 + delta.seconds


def plain_event_window(filters: Sequence[ET.Element]) -> bool:
    """Whether the query is exactly `VCALENDAR > VEVENT > time-range` with a start or an end:
    the shape whose full filter is `time_range_match` on the item's VEVENTs."""
    if len(filters) != 1 or len(filters[0]) != 1:
        return False
    calendar = filters[0][0]
    if not _is_comp(calendar, "VCALENDAR") or len(calendar) != 1:
        return False
    event = calendar[0]
    if not _is_comp(event, "VEVENT") or len(event) != 1:
        return False
    window = event[0]
    return window.tag == xmlutils.make_clark("C:time-range") and bool(window.get("start") or window.get("end"))


def _is_comp(element: ET.Element, name: str) -> bool:
    return element.tag == xmlutils.make_clark("C:comp-filter") and element.get("name", "").upper() == name
