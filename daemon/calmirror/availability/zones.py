"""Which zone a TZID means, decided per object and never by name across objects.

Exchange and Outlook name their own zone `Customized Time Zone`, and two invitations
can define it with different offsets. icalendar remembers every non-IANA VTIMEZONE it
parses in a process-wide map keyed by TZID (`icalendar.timezone.tzp`, filled by the
parser's `cache_timezone_component`; first definition wins), so a second object would
be read with the first one's rules, and an object that uses the name without defining it
would borrow whichever definition came first. `localise` therefore re-resolves every
non-IANA TZID of a parsed calendar from that calendar's own text, after parsing:

1. a VTIMEZONE of that name in the same VCALENDAR: its own definition (the tzinfo is
   built once per distinct definition text, so identical definitions share one object
   and different ones never meet);
2. otherwise an IANA name (a leading vendor path such as `/freeassociation.../` dropped);
3. otherwise a Windows name ("W. Europe Standard Time") through icalendar's copy of the
   CLDR windowsZones table;
4. otherwise the value is floating, i.e. read in the configured zone, and reported.

An IANA name means the IANA zone even when the object carries a VTIMEZONE for it: that
block is the client's excerpt of the same rules (Apple, Google and Microsoft write them
that way), the compiled IANA zone is exact for every year, and icalendar never lets such
a block into its cache. `custom_tzids` names the TZIDs this matters for, so the mirror's
compatible copies can rename them per definition (`definition_digest`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import zoneinfo
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

# Properties whose values the engine reads in a zone: everything else is left alone.
DATE_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")

_defined: dict[bytes, dt.tzinfo] = {}  # definition text -> tzinfo; bounded by distinct definitions
_defined_lock = threading.Lock()
_DEFINED_KEPT = 4096  # distinct definitions remembered; beyond that, rebuilt per object
_TZID_PARAM = re.compile(r';TZID=("[^"]*"|[^;:]*)', re.IGNORECASE)


_DATE_LINE = re.compile(
    r"^((?:DTSTART|DTEND|DUE|RDATE|EXDATE|RECURRENCE-ID)(?:;[^:\r\n]*)?):(\d{8}(?:,\d{8})*)(\r?)$",
    re.MULTILINE | re.IGNORECASE,
)


def without_date_zones(text: str) -> str:
    """`text` with the TZID parameter dropped from date values (`DTSTART;VALUE=DATE;TZID=...`).

    A DATE has no time of day and so no zone (RFC 5545 3.3.4); some writers add the TZID all
    the same. icalendar then reads the day as midnight in that zone, a timed 24 hours: no longer
    all-day, and in the wrong zone for someone elsewhere. Radicale reads the day."""
    if "VALUE=DATE" not in text.upper():
        return text

    def drop(match: re.Match[str]) -> str:
        head = match.group(1)
        upper = head.upper()
        if "VALUE=DATE" not in upper or "VALUE=DATE-TIME" in upper or "TZID=" not in upper:
            return match.group(0)
        return _TZID_PARAM.sub("", head) + ":" + match.group(2) + match.group(3)

    return _DATE_LINE.sub(drop, text)


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def iana_name(tzid: str) -> str | None:
    """The IANA zone a TZID names, allowing RFC 5545 "globally unique" vendor prefixes."""
    cleaned = tzid.strip().strip("/")
    names = _iana_names()
    if cleaned in names:
        return cleaned
    if tzid.strip().startswith("/"):
        parts = cleaned.split("/")
        for start in range(1, len(parts)):
            candidate = "/".join(parts[start:])
            if candidate in names:
                return candidate
    return None


def windows_name(tzid: str) -> str | None:
    """The IANA zone of a Windows zone name (CLDR windowsZones), or None."""
    return WINDOWS_TO_OLSON.get(tzid.strip())


def is_custom(tzid: str) -> bool:
    """True for any TZID that is not plainly an IANA name: custom and Windows names alike."""
    return iana_name(tzid) is None


def definition_digest(vtimezone: icalendar.Component | str | bytes) -> str:
    """A short, stable name for one VTIMEZONE definition (its text with the TZID line left out).

    Two objects defining `Customized Time Zone` differently get different digests; the same
    definition written by two organisers gets the same one.
    """
    text = vtimezone if isinstance(vtimezone, str | bytes) else vtimezone.to_ical()
    raw = text.encode() if isinstance(text, str) else text
    body = b"\n".join(
        line.strip() for line in raw.replace(b"\r\n ", b"").splitlines() if not line.upper().startswith(b"TZID")
    )
    return hashlib.sha256(body).hexdigest()[:12]


def _unfolded(text: str) -> Iterator[str]:
    yield from re.sub(r"\r?\n[ \t]", "", text).splitlines()


def custom_tzids(source: icalendar.Calendar | str | bytes) -> set[str]:
    """TZIDs of one object that are not IANA names: defined in-object by a VTIMEZONE whose
    name is not an IANA zone, or used anywhere as a Windows name.

    These are the names a process-wide zone map (icalendar's, or vobject's in Radicale)
    could confuse between objects; renaming them per definition makes them safe.
    """
    if isinstance(source, icalendar.Calendar):
        defined = {str(tz["TZID"]) for tz in source.walk("VTIMEZONE") if "TZID" in tz}
        used = set(_used_tzids(source.walk("VEVENT")))
    else:
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        defined, used = set(), set()
        depth = 0
        for line in _unfolded(text):
            upper = line.upper()
            if upper.startswith("BEGIN:VTIMEZONE"):
                depth += 1
            elif upper.startswith("END:VTIMEZONE"):
                depth -= 1
            elif depth and upper.startswith("TZID") and upper[4:5] in (":", ";"):
                defined.add(line[len(_name_and_params(line)) :].strip())
            for match in _TZID_PARAM.finditer(_name_and_params(line)):
                used.add(match.group(1).strip('"'))
    return {t for t in defined if is_custom(t)} | {t for t in used if windows_name(t) is not None}


def _name_and_params(line: str) -> str:
    """A content line up to and including the colon that starts its value (colons inside
    quoted parameter values, as in Outlook's `TZID="(UTC+01:00) Amsterdam, Berlin"`, do not count)."""
    quoted = False
    for n, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return line[: n + 1]
    return line


def _used_tzids(events: Iterable[icalendar.Component]) -> Iterator[str]:
    for event in events:
        for name in DATE_PROPERTIES:
            for prop in _values(event.get(name)):
                tzid = getattr(prop, "params", {}).get("TZID")
                if tzid:
                    yield str(tzid)


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _from_definition(vtimezone: icalendar.Timezone) -> dt.tzinfo:
    key = vtimezone.to_ical()
    found = _defined.get(key)
    if found is not None:
        return found
    # lookup_tzid=False: build from this block, never from icalendar's map by name
    tz: dt.tzinfo = vtimezone.to_tz(lookup_tzid=False)
    with _defined_lock:
        if len(_defined) >= _DEFINED_KEPT:
            _defined.clear()
        _defined[key] = tz
    return tz


def zone_for(tzid: str, own: dict[str, icalendar.Timezone]) -> tuple[dt.tzinfo | None, str | None]:
    """(tzinfo or None for floating, a reason when the TZID could not be resolved)."""
    name = iana_name(tzid)
    if name is not None:
        return zoneinfo.ZoneInfo(name), None
    definition = own.get(tzid)
    broken = ""
    if definition is not None:
        try:
            return _from_definition(definition), None
        except Exception as exc:  # a broken block: fall back to the name, and say so below
            broken = f"VTIMEZONE {tzid!r} unusable ({type(exc).__name__})"
    mapped = windows_name(tzid)
    if mapped is not None:
        return zoneinfo.ZoneInfo(mapped), broken or None
    return None, (broken + "; " if broken else "") + f"unknown TZID {tzid!r} read in the configured zone"


def _retime(value: Any, tz: dt.tzinfo | None) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=tz)
    if isinstance(value, tuple):  # a PERIOD: (start, end) or (start, duration)
        return tuple(_retime(v, tz) for v in value)
    return value  # dates and durations carry no zone


def localise(calendar: icalendar.Calendar) -> list[tuple[str, str]]:
    """Re-resolve every non-IANA TZID in the calendar's VEVENTs from its own definitions.

    Rewrites the parsed values in place (wall times unchanged, tzinfo replaced), so it is
    idempotent. Returns (uid, reason) for TZIDs that could not be resolved at all.
    """
    own: dict[str, icalendar.Timezone] | None = None
    resolved: dict[str, tuple[dt.tzinfo | None, str | None]] = {}
    problems: dict[tuple[str, str], None] = {}
    for event in calendar.walk("VEVENT"):
        for name in DATE_PROPERTIES:
            for prop in _values(event.get(name)):
                params = getattr(prop, "params", None)
                tzid = params.get("TZID") if params else None
                if not tzid or iana_name(str(tzid)) is not None:
                    continue  # no zone, or an IANA name icalendar already read right
                tzid = str(tzid)
                if tzid not in resolved:
                    if own is None:
                        own = {
                            str(tz["TZID"]): tz
                            for tz in calendar.walk("VTIMEZONE")
                            if isinstance(tz, icalendar.Timezone) and "TZID" in tz
                        }
                    resolved[tzid] = zone_for(tzid, own)
                tz, why = resolved[tzid]
                if why:
                    problems[(str(event.get("UID", "")), why)] = None
                items = getattr(prop, "dts", None)
                for item in items if items is not None else [prop]:
                    item.dt = _retime(item.dt, tz)
    return list(problems)
