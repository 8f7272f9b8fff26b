"""Objects a client writes into appointments/ or blocked/ that must not be stored as they are.

Each check answers with a CalDAV precondition and one line naming the construct, and the
middleware refuses the write (403 with a `DAV:error` body). Refusing, rather than storing
the object and holding it back from iCloud, is chosen for every case here: the client
learns at once, on the write it made, and nothing sits in the store that would be shown
as busy time locally but never reach iCloud, or reach it changed.

- A component other than VEVENT (a VTODO, a VJOURNAL): both collections hold events only
  (`supported-calendar-component-set` says so) and nothing else can be pushed.
- DTEND before DTSTART, or a negative DURATION: the event has no time to block.
- A TZID neither defined by a VTIMEZONE in the object nor a known IANA or Windows zone
  name: the event's time is unknowable, and iCloud would place it by guesswork.
- Shapes iCloud holds but the local store (Radicale) cannot keep exactly: overrides
  without their master event, a COUNT over the store's occurrence limit, RDATE periods.
  A client writing them gets a line naming the construct rather than Radicale's generic
  refusal or a silently changed copy. (Custom zones that share a TZID with another
  object's are stored with their own definition and pushed exactly: no check needed.)

The scan reads only the few properties it needs, line by line, so its cost stays
proportional to the size of the body whatever a DESCRIPTION holds.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from functools import cache

from icalendar.parser import Contentline
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

SUPPORTED_COMPONENT = "supported-calendar-component"
VALID_DATA = "valid-calendar-data"
VALID_OBJECT = "valid-calendar-object-resource"

_UNFOLD = re.compile(r"\r?\n[ \t]")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_READ = frozenset({"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "RECURRENCE-ID", "TZID", "EXDATE"})
_COUNT = re.compile(r"(?:^|;)COUNT=(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Suspect:
    """Why an object is refused: the CalDAV precondition and one line for a person."""

    condition: str
    reason: str


@dataclass
class _Component:
    name: str
    props: dict[str, list[tuple[dict[str, str], str]]] = field(default_factory=dict)


_Check = Callable[[list[_Component]], Suspect | None]


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | frozenset(WINDOWS_TO_OLSON)


def _zone(tzid: str) -> tzinfo | None:
    name = WINDOWS_TO_OLSON.get(tzid, tzid)
    try:
        return zoneinfo.ZoneInfo(name) if name in _known_zones() or name in WINDOWS_TO_OLSON.values() else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def check(body: bytes, collection: str, max_occurrences: int) -> Suspect | None:
    """The reason to refuse `body` written into `collection`, or None to let the store decide."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the store refuses it with its own reason
    components, timezones = _scan(text)
    kinds = {c.name for c in components}
    other = sorted(kinds - {"VEVENT"})
    if other:
        return Suspect(
            SUPPORTED_COMPONENT,
            f"{collection}/ holds events (VEVENT) only; a {other[0]} cannot be stored here",
        )
    events = [c for c in components if c.name == "VEVENT"]
    if not events:
        return None
    for check_one in (_masterless, _periods, _count(max_occurrences), _zones(timezones), _backwards):
        found = check_one(events)
        if found is not None:
            return found
    return None


def _scan(text: str) -> tuple[list[_Component], set[str]]:
    """The components directly inside VCALENDAR (their properties of interest) and the
    TZIDs its VTIMEZONEs define."""
    components: list[_Component] = []
    timezones: set[str] = set()
    depth = 0
    current: _Component | None = None
    in_timezone = False
    for line in _UNFOLD.sub("", text).splitlines():
        match = _NAME.match(line)
        if match is None:
            continue
        name = match.group().upper()
        if name in ("BEGIN", "END"):
            value = line[match.end() + 1 :].strip().upper()
            if name == "BEGIN":
                depth += 1
                if depth == 2:
                    in_timezone = value == "VTIMEZONE"
                    current = None if in_timezone else _Component(value)
                    if current is not None:
                        components.append(current)
            else:
                if depth == 2:
                    current, in_timezone = None, False
                depth -= 1
            continue
        if name not in _READ:
            continue
        if in_timezone and depth == 2 and name == "TZID":
            timezones.add(line[match.end() + 1 :].strip())
        elif current is not None and depth == 2:
            try:
                _, params, value = Contentline(line).parts()
            except ValueError:
                continue  # the store's own parser gives the reason
            current.props.setdefault(name, []).append(({k.upper(): str(v) for k, v in params.items()}, str(value)))
    return components, timezones


def _masterless(events: list[_Component]) -> Suspect | None:
    if all("RECURRENCE-ID" in e.props for e in events):
        return Suspect(
            VALID_OBJECT,
            "an override (RECURRENCE-ID) without its master event is not supported by the local store; "
            "PUT the whole series (its master event with the overrides), or the occurrence as its own event",
        )
    return None


def _periods(events: list[_Component]) -> Suspect | None:
    for event in events:
        for params, value in event.props.get("RDATE", []):
            if params.get("VALUE", "").upper() == "PERIOD" or "/" in value:
                return Suspect(
                    VALID_DATA,
                    "RDATE;VALUE=PERIOD is not supported by the local store; give RDATE start times "
                    "(the event's duration applies) or write each period as its own event",
                )
    return None


def _count(limit: int) -> _Check:
    def over(events: list[_Component]) -> Suspect | None:
        for event in events:
            for _, value in event.props.get("RRULE", []):
                found = _COUNT.search(value)
                if found and limit > 0 and int(found.group(1)) > limit:
                    return Suspect(
                        VALID_DATA,
                        f"RRULE COUNT={found.group(1)} is over the local store's limit of {limit} occurrences; "
                        "end the rule with UNTIL, or leave both out to repeat forever",
                    )
        return None

    return over


def _zones(defined: set[str]) -> _Check:
    def unknown(events: list[_Component]) -> Suspect | None:
        for event in events:
            for values in event.props.values():
                for params, _ in values:
                    tzid = params.get("TZID")
                    if tzid is not None and tzid not in defined and _zone(tzid) is None:
                        return Suspect(
                            VALID_DATA,
                            f"TZID {tzid!r} is neither defined in the object (no VTIMEZONE) nor a known "
                            "time zone; add its VTIMEZONE or use an IANA name such as Europe/Berlin",
                        )
        return None

    return unknown


def _backwards(events: list[_Component]) -> Suspect | None:
    for event in events:
        for _, value in event.props.get("DURATION", []):
            if value.strip().startswith("-"):
                return Suspect(
                    VALID_DATA, f"DURATION {value.strip()} is negative; an event cannot end before it starts"
                )
        start, end = _first(event, "DTSTART"), _first(event, "DTEND")
        if start is None or end is None:
            continue
        begins, ends = _moment(*start), _moment(*end)
        if _before(ends, begins):
            return Suspect(
                VALID_DATA,
                f"DTEND ({end[1]}) is before DTSTART ({start[1]}); an event cannot end before it starts",
            )
    return None


def _before(a: _Moment, b: _Moment) -> bool:
    """Whether `a` is before `b`; False when the two have no order that can be known here
    (a date against a time, a floating time against a zoned one, two object-defined zones)."""
    if a is None or b is None:
        return False
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] and a[1] < b[1]
    if isinstance(a, datetime) != isinstance(b, datetime):
        return False
    return a < b


def _first(event: _Component, name: str) -> tuple[dict[str, str], str] | None:
    values = event.props.get(name)
    return values[0] if values else None


_Moment = date | datetime | tuple[str, datetime] | None


def _moment(params: dict[str, str], value: str) -> _Moment:
    """A comparable form of a DTSTART/DTEND: a date, an aware datetime, or (TZID, naive
    datetime) for a zone only the object defines; None when it cannot be read."""
    value = value.strip()
    try:
        if len(value) == 8:
            return datetime.strptime(value, "%Y%m%d").date()
        if value.endswith("Z"):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        naive = datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    tzid = params.get("TZID")
    if tzid is None:
        return ("", naive)  # floating: comparable with another floating time only
    zone = _zone(tzid)
    return naive.replace(tzinfo=zone) if zone is not None else (tzid, naive)
