"""A calendar-query's `expand` (RFC 4791 §9.6.5) answered right, in place of Radicale 3.9's.

Radicale's `_expand` (`radicale.app.report`) gets several shapes wrong, each measured
against it over HTTP:

- **A floating recurring event answers 500 for the whole collection**: it asks the
  floating (naive) rule set for occurrences between two UTC (aware) instants, and dateutil
  cannot compare the two ("can't compare offset-naive and offset-aware datetimes"). A
  client then sees nothing of that calendar. A floating override would also be moved by
  the machine's own UTC offset (`astimezone` of a naive time).
- **RDATEs without an RRULE are not expanded**: such a series comes back as its first
  instance still carrying the RDATE list (beside an RRULE they are). Compatible copies use
  RDATEs without a rule (a master for overrides without one, RDATE;VALUE=PERIOD,
  a rule that never matches), so a client expanding one saw only its DTSTART.
- **An override moved into the window from outside it is lost**, as only rule
  occurrences inside the window are looked at.
- **A single zoned event keeps its TZID and VTIMEZONE**, which §9.6.5 forbids.

Here each instance of the resource (every rule or RDATE occurrence not overridden, every
override at its own time, a single event as itself) is kept when it overlaps the window by
the rules of §9.9, floating times and dates read as UTC exactly as Radicale's own
time-range filter reads them (so expand answers the items the filter selected). It is
written without RRULE, RDATE, EXDATE or EXRULE and with a RECURRENCE-ID when it comes from
a series, times with a zone in UTC, floating times still floating (§9.6.5 converts only
"local time with reference to time zone information"), dates as dates, and no VTIMEZONE.
Radicale's occurrence limit still applies (its ValueError is its 400 answer).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import radicale.app.report
import vobject
import vobject.base
from radicale import item as radicale_item

_original = radicale.app.report._expand

_RECURRENCE = ("rrule", "rdate", "exdate", "exrule")
_DAY = dt.timedelta(days=1)
Value = dt.date | dt.datetime


@dataclass(frozen=True)
class _Instance:
    event: vobject.base.Component
    start: Value
    end: Value | None  # None: DTSTART alone (an instant, or one day for a date)


def expand(
    element: ET.Element,
    item: radicale_item.Item,
    start: dt.datetime,
    end: dt.datetime,
    time_range_start: dt.datetime | None = None,
    time_range_end: dt.datetime | None = None,
    max_occurrence: int = 0,
) -> tuple[ET.Element, int]:
    """Radicale's `_expand` contract: the element holding the expanded object, and how many
    VEVENTs it holds (0: the item is left out of the answer)."""
    low, high = start, end
    if time_range_start is not None and time_range_end is not None:  # Radicale narrows by both
        low, high = max(low, time_range_start), min(high, time_range_end)
    calendar = vobject.readOne(item.serialize())  # a copy of its own: the answer edits it
    try:
        instances = [i for i in _instances(calendar.vevent_list, low, high, max_occurrence) if _overlaps(i, low, high)]
    except TypeError:  # naive and aware values mixed inside one series: Radicale's own answer
        return _original(element, item, start, end, time_range_start, time_range_end, max_occurrence)
    if not instances:
        element.text = ""
        return element, 0
    for zone in list(calendar.contents.get("vtimezone", [])):
        calendar.remove(zone)
    calendar.contents["vevent"] = [i.event for i in sorted(instances, key=lambda i: _utc(i.start))]
    element.text = calendar.serialize()
    return element, len(instances)


def _instances(
    events: list[vobject.base.Component], low: dt.datetime, high: dt.datetime, limit: int
) -> Iterator[_Instance]:
    overrides = [e for e in events if _has(e, "recurrence_id")]
    masters = [e for e in events if not _has(e, "recurrence_id")]
    overridden = {_key(o.recurrence_id.value) for o in overrides}
    for master in masters:
        if any(_has(master, name) for name in ("rrule", "rdate")):
            for occurrence in _occurrences(master, low, high, limit):
                if _key(occurrence) not in overridden:
                    yield _occurrence(master, occurrence)
        else:
            yield _as_is(master)
    for override in overrides:
        yield _as_is(override)


def _occurrences(master: vobject.base.Component, low: dt.datetime, high: dt.datetime, limit: int) -> list[Value]:
    """The starts of the series (RRULE, RDATE and DTSTART itself, less EXDATE) that may
    overlap the window: as Radicale's time-range filter walks them (`addRDate=True`)."""
    first = master.dtstart.value
    naive = not isinstance(first, dt.datetime) or first.tzinfo is None
    lead = _length(master) or dt.timedelta(0)
    after, before = low - lead, high
    if naive:
        after, before = after.replace(tzinfo=None), before.replace(tzinfo=None)
    found: list[dt.datetime] = master.getrruleset(addRDate=True).between(after, before, inc=True, count=limit or None)
    if limit and len(found) >= limit:
        raise ValueError(f"REPORT occurrences limit of {limit} hit")  # Radicale's words and its 400
    if not isinstance(first, dt.datetime):
        return [f.date() for f in found]
    return list(found)


def _occurrence(master: vobject.base.Component, at: Value) -> _Instance:
    event = master.duplicate(master)
    for name in _RECURRENCE:
        event.contents.pop(name, None)
    length = _length(master)
    _put(event, "RECURRENCE-ID", at)
    _put(event, "DTSTART", at)
    end = None
    if _has(master, "dtend") and length is not None:
        end = _shift(at, length)
        _put(event, "DTEND", end)
    return _Instance(event, at, end if end is not None else _end_by_duration(master, at))


def _as_is(event: vobject.base.Component) -> _Instance:
    for name in _RECURRENCE:
        event.contents.pop(name, None)
    begin = event.dtstart.value
    end = event.dtend.value if _has(event, "dtend") else _end_by_duration(event, begin)
    for name, prop in (("RECURRENCE-ID", "recurrence_id"), ("DTSTART", "dtstart"), ("DTEND", "dtend")):
        if _has(event, prop):
            _put(event, name, getattr(event, prop).value)
    return _Instance(event, begin, end)


def _length(event: vobject.base.Component) -> dt.timedelta | None:
    """DTEND - DTSTART (the same exact length for every instance, RFC 5545 §3.8.5.3), or
    DURATION; None when the event gives neither."""
    if _has(event, "dtend"):
        begin, end = event.dtstart.value, event.dtend.value
        if isinstance(begin, dt.datetime) and isinstance(end, dt.datetime) and begin.tzinfo and end.tzinfo:
            return end.astimezone(dt.UTC) - begin.astimezone(dt.UTC)
        length: dt.timedelta = _utc(end) - _utc(begin)
        return length
    if _has(event, "duration"):
        duration: dt.timedelta = event.duration.value
        return duration
    return None


def _end_by_duration(event: vobject.base.Component, begin: Value) -> Value | None:
    if _has(event, "duration"):
        return _shift(begin, event.duration.value)
    return None


def _shift(at: Value, length: dt.timedelta) -> Value:
    if isinstance(at, dt.datetime):
        return (at.astimezone(dt.UTC) if at.tzinfo else at) + length
    return at + dt.timedelta(days=length.days)


def _overlaps(instance: _Instance, low: dt.datetime, high: dt.datetime) -> bool:
    """RFC 4791 §9.9's table, floating times and dates read as UTC (Radicale's filter)."""
    begin = _utc(instance.start)
    if instance.end is None:
        if not isinstance(instance.start, dt.datetime):
            return low < begin + _DAY and high > begin
        return low <= begin < high
    finish = _utc(instance.end)
    if finish <= begin:
        return low <= begin < high
    return low < finish and high > begin


def _utc(value: Value) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _key(value: Value) -> dt.datetime:
    """A RECURRENCE-ID and an occurrence compare as UTC instants, floating as wall time."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value.astimezone(dt.UTC) if value.tzinfo else value


def _put(event: vobject.base.Component, name: str, value: Value) -> None:
    """Written as text (Radicale does the same: vobject's own serialization of a naive or
    UTC value varies with how the line was made)."""
    if not isinstance(value, dt.datetime):
        line = vobject.base.ContentLine(name, [["VALUE", "DATE"]], value.strftime("%Y%m%d"))
    elif value.tzinfo is None:
        line = vobject.base.ContentLine(name, [], value.strftime("%Y%m%dT%H%M%S"))
    else:
        line = vobject.base.ContentLine(name, [], value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    event.contents[name.lower()] = [line]


def _has(event: vobject.base.Component, prop: str) -> bool:
    return bool(event.contents.get(prop.replace("_", "-").lower()))


def install() -> None:
    """Idempotent; runs when the local server's module is imported."""
    radicale.app.report._expand = expand
