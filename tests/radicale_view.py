"""What Radicale's own time-range walk finds in a stored text (RFC 4791 §9.9): the occurrences a
client of the local server is answered with, to compare with calmirror's busy time."""

from __future__ import annotations

import datetime as dt

import vobject
from radicale.item import filter as radicale_filter


def radicale_starts(text: str, window: tuple[dt.datetime, dt.datetime]) -> list[dt.datetime]:
    """The UTC starts Radicale's walk visits inside `window`, sorted."""
    seen: list[dt.datetime] = []

    def visit(start: dt.datetime, _end: dt.datetime, is_recurrence: bool) -> bool:
        if window[0] <= start.astimezone(dt.UTC) < window[1]:
            seen.append(start.astimezone(dt.UTC))
        return not is_recurrence and start.astimezone(dt.UTC) >= window[1]  # (a rule may never end)

    radicale_filter.visit_time_ranges(vobject.readOne(text), "VEVENT", visit, lambda _start: False)
    return sorted(seen)
