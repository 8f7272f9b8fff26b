"""Compatible copies of objects carrying an empty VTIMEZONE (`BEGIN:VTIMEZONE`, a TZID,
`END:VTIMEZONE`, neither STANDARD nor DAYLIGHT), which some exporters write for a zone they
could not describe.

Radicale's vobject cannot build a zone from such a block and refuses the whole object ("not
valid iCalendar"), so clients of the mirror never saw it while busy time counted it. Busy time
reads each TZID as `availability.zones.zone_for` does: an IANA name is the IANA zone, whatever
block stands beside it; a Windows name whose block is unusable is the IANA zone CLDR maps it
to; any other name is floating (read in the configured zone). The copy drops the empty block
and writes each time as that reading: the IANA name (vobject knows it without a block), the
mapped IANA name, or a floating time (no TZID).

A VTIMEZONE whose TZID property carries a parameter (`TZID;X-RICAL-TZSOURCE=TZINFO:America/
Los_Angeles`, the ri_cal gem's) is refused by Radicale too; the copy drops the parameter.
"""

from __future__ import annotations

import re

from calmirror.availability import zones
from calmirror.ical_lines import TZID_PARAM, Resource, name_of, params_of, split, value_of

EMPTY_ZONES = "empty time zone definitions dropped, their times written as busy time reads them"
TZID_PARAMETERS = "parameters of a VTIMEZONE's TZID dropped"

_EMPTY = re.compile(r"^BEGIN:VTIMEZONE\r?\n(?:(?!BEGIN:|END:)[^\r\n]*\r?\n)*END:VTIMEZONE\r?$", re.MULTILINE | re.I)


def has_tzid_parameters(text: str) -> bool:
    """Cheap first look: a TZID property with parameters (`TZID;X-RICAL-TZSOURCE=TZINFO:...`,
    as the ri_cal gem writes it), which vobject cannot read as a zone's name: Radicale refuses
    the object, while busy time reads the zone by its name."""
    return "\nTZID;" in text


def plain_tzid_properties(resource: Resource) -> bool:
    changed = False
    for block in resource.timezones:
        for index, line in enumerate(block):
            if name_of(line) == "TZID" and params_of(line):
                block[index] = "TZID:" + value_of(line)
                changed = True
    return changed


def has_empty_zones(text: str) -> bool:
    """Cheap first look: an END:VTIMEZONE right after a line that ends no component."""
    at = text.find("END:VTIMEZONE")
    while at > 0:
        line_start = text.rfind("\n", 0, text.rfind("\n", 0, at)) + 1
        if not text.startswith("END:", line_start):
            return _EMPTY.search(text) is not None
        at = text.find("END:VTIMEZONE", at + 13)
    return False


def _is_empty(block: list[str]) -> bool:
    return not any(line.upper().startswith("BEGIN:") for line in block[1:])


def drop_empty_zones(resource: Resource) -> bool:
    empty = [block for block in resource.timezones if _is_empty(block)]
    if not empty:
        return False
    names = {value_of(line).strip() for block in empty for line in block if name_of(line) == "TZID"}
    names -= {
        value_of(line).strip() for b in resource.timezones if not _is_empty(b) for line in b if name_of(line) == "TZID"
    }
    resource.timezones = [block for block in resource.timezones if not _is_empty(block)]
    for event in resource.events:
        event.lines = [_rebound(line, names) for line in event.lines]
    return True


def _rebound(line: str, names: set[str]) -> str:
    head, value = split(line)
    if "TZID=" not in head.upper():
        return line

    def swap(match: re.Match[str]) -> str:
        raw = match.group(2)
        name = raw.strip('"').strip()
        if name not in names:
            return match.group(0)
        mapped = zones.iana_name(name) or zones.windows_name(name)
        if mapped is None:
            return ""  # floating, as busy time reads a name it cannot place
        return match.group(1) + mapped

    return TZID_PARAM.sub(swap, head) + ":" + value
