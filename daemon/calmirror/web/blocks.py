"""The busy blocks of one day as HTML, written here rather than in the template.

A dense week (10,000 mirrored events put about 1,300 blocks in one) spent most of its time in
Jinja's per-item machinery (filters, attribute lookups, escaping calls); the same markup from
an f-string with `markupsafe.escape` on every value from a calendar costs a tenth of that.
Every value that came from iCloud or a client is escaped here; the rest are numbers and ISO
times we made. What is the same for every block of a source (its class, collection and
calendar name) is escaped once per source, and times and rows are worked out from their
fields rather than through `strftime` and zone arithmetic: at this size those were most of
what was left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from calmirror.web.week import Day

ROWS = 96  # quarter hours in a day: the timeline's grid rows (the stylesheet has r-1..r-96, h-1..h-96)
MIN_ROWS = 2  # a 15-minute event still gets room for its time and title


def _hm(value: dt.datetime) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def _minutes(value: dt.datetime, day: dt.date, before: int) -> int:
    """Minutes from `day`'s local midnight on the wall clock (as `Block.minutes_on` counts them),
    or `before` when `value` is on another day: read from the fields, not by zone arithmetic."""
    return value.hour * 60 + value.minute if value.date() == day else before


def timeline(day: Day, zone: ZoneInfo, classes: Mapping[str, str]) -> Markup:
    parts: list[str] = []
    per_source: dict[str, tuple[str, str, str]] = {}
    for b in sorted(day.timed, key=lambda b: (b.start, b.end)):  # in time order: a phone lists them
        shown = per_source.get(b.source)
        if shown is None:
            shown = per_source[b.source] = (
                str(escape(classes.get(b.source, ""))),
                str(escape(b.source)),
                str(escape(b.calendar)),
            )
        css, source, calendar = shown
        title = escape(b.title)
        start, end = _minutes(b.start, day.date, 0), _minutes(b.end, day.date, 24 * 60)
        row = min(start // 15, ROWS - MIN_ROWS)
        rows = min(max(-(-end // 15) - row, MIN_ROWS), ROWS - row)
        begins = _hm(b.start)
        label = begins if b.start.date() == day.date else "…"
        until = _hm(b.end) if b.end.date() == day.date else "…"
        kind = " tentative" if b.tentative else ""
        parts.append(
            f'<div class="block r-{row + 1} h-{rows}{kind} {css}" '
            f'data-source="{source}" data-start="{b.start.isoformat()}" data-end="{b.end.isoformat()}" '
            f'title="{begins}–{_hm(b.end)} {title} · {calendar}">'
            f'<span class="time">{label}<span class="until">–{until}</span></span> <span class="title">{title}</span> '
            f'<span class="cal">{calendar}</span></div>\n'
        )
    return Markup("".join(parts))
