"""Reading the XML bodies of client requests safely.

defusedxml with DTDs forbidden: a request body has no business declaring a DOCTYPE, and
refusing any keeps entity expansion (billion laughs) and external entities (file or
network reads) out entirely. Only the few things the middleware decides on are read here;
everything else is left to Radicale.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import defusedxml
import defusedxml.ElementTree as DefusedET

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"

#: Properties a PROPPATCH must not touch. Radicale 3.9 answers a resourcetype change with
#: 400 yet stores the remaining properties without the calendar's tag, after which PUT
#: gets 403; supported-calendar-component-set is protected by RFC 4791 §5.2.3.
PROTECTED_PROPERTIES = frozenset({f"{{{DAV}}}resourcetype", f"{{{CALDAV}}}supported-calendar-component-set"})


class XMLRefused(ValueError):
    """The body is not XML we are willing to read; `reason` is safe to send back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(body: bytes) -> ET.Element:
    try:
        return DefusedET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as error:
        raise XMLRefused("XML with a DOCTYPE or entities is not accepted") from error
    except ET.ParseError as error:
        raise XMLRefused("malformed XML") from error


def protected_properties_touched(root: ET.Element) -> list[str]:
    """The protected properties a PROPPATCH body sets or removes."""
    if root.tag != f"{{{DAV}}}propertyupdate":
        return []
    touched = []
    for action in root:
        if action.tag not in (f"{{{DAV}}}set", f"{{{DAV}}}remove"):
            continue
        for prop in action.findall(f"{{{DAV}}}prop/*"):
            if prop.tag in PROTECTED_PROPERTIES:
                touched.append(prop.tag)
    return touched


@dataclass(frozen=True)
class FreeBusyQuery:
    start: datetime
    end: datetime


def free_busy_query(root: ET.Element) -> FreeBusyQuery | None:
    """The time range of a CalDAV free-busy-query REPORT (RFC 4791 §7.10), or None.

    Raises XMLRefused for a free-busy-query without a usable start and end.
    """
    if root.tag != f"{{{CALDAV}}}free-busy-query":
        return None
    time_range = root.find(f"{{{CALDAV}}}time-range")
    if time_range is None:
        raise XMLRefused("free-busy-query needs a time-range")
    start = _utc(time_range.get("start"))
    end = _utc(time_range.get("end"))
    if start is None or end is None:
        raise XMLRefused("time-range needs start and end as UTC date-times (e.g. 20250101T000000Z)")
    if end <= start:
        raise XMLRefused("time-range end must be after its start")
    return FreeBusyQuery(start, end)


_UTC_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)


def _utc(value: str | None) -> datetime | None:
    """A UTC date-time as CalDAV writes it (strptime cost more than the rest of the parse)."""
    found = _UTC_TIME.fullmatch(value.strip()) if value else None
    if found is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in found.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
