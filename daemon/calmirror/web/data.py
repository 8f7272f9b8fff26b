"""What the page and `calmirror week` read: labels for each source, and the week itself.

The only I/O here is through the owners (the state database's methods, `BusySources`);
the week is then built by the pure `week.build_week`.
"""

from __future__ import annotations

import datetime as dt
import re

from calmirror.availability.sources import PUSHED_IN_ICLOUD, BusySources
from calmirror.config import Settings
from calmirror.local.layout import APPOINTMENTS, BLOCKED, feed_id, is_feed_id, mirror_name
from calmirror.model import PRIMARY_SPELLING, account_of
from calmirror.state import State
from calmirror.web.week import DEFAULT_HOURS, DEFAULT_SLOT, SourceLabel, Week, build_week

APPOINTMENTS_COLOR = "#1e6fd9"
BLOCKED_COLOR = "#6e6e73"
MIRROR_COLOR = "#34aadc"
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}(?:[0-9A-Fa-f]{2})?$")


def safe_color(text: str | None, default: str = MIRROR_COLOR) -> str:
    """iCloud's `#RRGGBBAA` as `#rrggbb`; anything else (it comes from the server) is replaced,
    as the value ends up in a stylesheet."""
    if text and _COLOR.match(text.strip()):
        return text.strip()[:7].lower()
    return default


def source_labels(state: State, settings: Settings) -> dict[str, SourceLabel]:
    """Collection name -> how it is shown, for appointments, blocked slots and every mirror."""
    labels = {
        APPOINTMENTS: SourceLabel("Appointments", "appointments", APPOINTMENTS_COLOR),
        BLOCKED: SourceLabel("Blocked", "blocked", BLOCKED_COLOR),
        PUSHED_IN_ICLOUD: SourceLabel("Appointments (as changed in iCloud)", "appointments", APPOINTMENTS_COLOR),
    }
    calendars = {c.id: c for c in state.calendars()}
    names = state.calendar_names()
    if len(state.accounts()) > 1:  # as the CLI names them: work/Home beside default/Home
        names = {
            cal_id: f"{account_of(cal_id) or PRIMARY_SPELLING}/{name}" if not is_feed_id(cal_id) else name
            for cal_id, name in names.items()
        }
    feeds = {feed_id(f.name): f.privacy for f in state.feeds()}  # a feed's privacy is its own, not config's
    for row in state.mirrors():
        cal_id = row.calendar_id
        cal = calendars.get(cal_id)
        labels[mirror_name(str(row.slug))] = SourceLabel(
            name=names.get(cal_id, cal_id),
            kind="mirror",
            color=safe_color(cal.color if cal else None),
            private=feeds.get(cal_id, settings.calendar(cal_id).details) == "busy",
        )
    return labels


def week_for(
    busy: BusySources,
    state: State,
    settings: Settings,
    first: dt.date,
    *,
    slot: dt.timedelta = DEFAULT_SLOT,
    hours: tuple[dt.time, dt.time] | None = DEFAULT_HOURS,
) -> Week:
    """The week from `first` over what the local store holds now."""
    return build_week(
        lambda ws, we: busy.occurrences(ws, we) or [],
        busy.rules(),
        first,
        source_labels(state, settings),
        slot=slot,
        hours=hours,
    )
