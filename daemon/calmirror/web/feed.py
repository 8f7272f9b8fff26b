"""The free/busy feed: busy times only, as an ICS file at an unguessable URL.

Off until `calmirror feed enable`. For tools that read an ICS URL (a booking page, a
colleague's calendar through a reverse proxy the user sets up on purpose), so it carries
no title, place, attendee or UID of any event: only "Busy" blocks, one per merged busy
interval. Busy-only VEVENTs rather than VFREEBUSY because calendar apps that subscribe to a
URL show events and ignore VFREEBUSY.

The token is the only key: 256 random bits, compared in constant time, kept in the state
database (private to the user like the passwords), changed by `rotate`. A wrong token and
a disabled feed answer the same 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from calmirror.availability.intervals import Interval, merge
from calmirror.state import State

META_KEY = "feed_token"
PATH = "feed/"
DAYS_BACK = 7
DAYS_AHEAD = 90


def token(state: State) -> str | None:
    value = state.get_meta(META_KEY)
    return value if isinstance(value, str) and value else None


def enable(state: State) -> str:
    """The feed's token, made now when the feed was off."""
    return token(state) or rotate(state)


def rotate(state: State) -> str:
    new = secrets.token_urlsafe(32)
    state.set_meta(META_KEY, new)
    return new


def disable(state: State) -> bool:
    was_on = token(state) is not None
    state.set_meta(META_KEY, None)
    return was_on


def url(local_url: str, feed_token: str) -> str:
    return f"{local_url}.calmirror/{PATH}{feed_token}.ics"


def matches(state: State, given: str) -> bool:
    expected = token(state)
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=DAYS_BACK), today + dt.timedelta(days=DAYS_AHEAD)


def _stamp(moment: dt.datetime, up: bool = False) -> str:
    """UTC, whole seconds; an end is rounded up so rounding never shrinks busy time."""
    moment = moment.astimezone(dt.UTC)
    if up and moment.microsecond:
        moment = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def render(busy: Iterable[Interval], now: dt.datetime) -> str:
    """An iCalendar file of "Busy" events; UIDs come from the times, so a client sees a block
    that did not move as the same event."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calmirror//free-busy feed//EN", "X-WR-CALNAME:Busy"]
    for start, end in merge(busy):
        uid = hashlib.sha256(f"{_stamp(start)}/{_stamp(end)}".encode()).hexdigest()[:32]
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}@calmirror",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(start)}",
            f"DTEND:{_stamp(end, up=True)}",
            "SUMMARY:Busy",
            "TRANSP:OPAQUE",
            "CLASS:PRIVATE",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
