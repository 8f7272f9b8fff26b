"""vobject's fallback for a TZID no VTIMEZONE of the object defines, made right across DST.

vobject resolves such a TZID (`TZID=Europe/Berlin` without a VTIMEZONE: CRMs write it, and so
do compatible copies of Windows zone names) through pytz, and registers the result under the
name for the whole process; a VTIMEZONE read later does not replace it (the first one wins).
dateutil's rule walk keeps a pytz zone's offset from DTSTART (pytz zones need `normalize`),
so from then on every recurring event naming that zone, whatever VTIMEZONE it carried, was
placed an hour off after each DST change in Radicale's time-range queries, `expand` and
free-busy answers. A zoneinfo zone gives the right offset for every wall time; vobject's
pytz-only paths (`localize`, pytz's exceptions) are taken only for zones that have them.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import vobject.icalendar

_original = vobject.icalendar.getTzid


def get_tzid(tzid: str | None, smart: bool = True) -> dt.tzinfo | None:
    found: dt.tzinfo | None = _original(tzid, False)
    if found is not None or not smart or not tzid:
        return found
    try:
        zone = zoneinfo.ZoneInfo(str(tzid))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        fallback: dt.tzinfo | None = _original(tzid, smart)  # not an IANA name: vobject's own answer
        return fallback
    vobject.icalendar.registerTzid(tzid, zone)
    return zone


def install() -> None:
    """Idempotent; runs with `vobject_speed.install()`, before anything parses an object."""
    vobject.icalendar.getTzid = get_tzid
