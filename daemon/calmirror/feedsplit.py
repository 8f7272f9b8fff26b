"""Pure: one ICS feed (a single big VCALENDAR) into CalDAV resources, and what changed.

A CalDAV calendar holds one resource per UID: the master event and its overrides
(RECURRENCE-ID) together, with the VTIMEZONEs they name. A feed is all of them in one file.
The split works on the text's own lines, so each resource keeps the feed's exact bytes
(unfolded only to read UID and TZID); the busy time calmirror computes from it is the
feed's, not a re-serialisation's. No I/O, no clock: `feeds.py` carries the result out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SAFE_UID = re.compile(r"[A-Za-z0-9@._-]{1,100}")
_TZID_PARAM = re.compile(r';TZID=(?:"([^"]*)"|([^;:,]*))', re.IGNORECASE)
#: Calendar-level properties a resource keeps. METHOD is left out (RFC 4791 §4.1 forbids it
#: in a calendar object resource), and so are feed-wide X-WR-* names.
_KEPT_CALENDAR_PROPS = ("VERSION", "PRODID", "CALSCALE")


@dataclass(frozen=True)
class FeedSplit:
    resources: dict[str, str]  # resource name ("<uid>.ics") -> text
    uids: dict[str, str]  # resource name -> UID
    ignored: int = 0  # components other than VEVENT and VTIMEZONE (VTODO, VJOURNAL, …)
    calendars: int = 0  # VCALENDARs found (0: not iCalendar at all)


@dataclass(frozen=True)
class FeedDiff:
    """Resources by name, against the ETags stored for the feed's mirror."""

    new: dict[str, str] = field(default_factory=dict)  # name -> etag
    changed: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.new or self.changed or self.removed)


def etag_of(text: str) -> str:
    """The ETag calmirror gives a resource cut from a feed: its text's digest, so an
    unchanged resource is recognised without comparing texts."""
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def resource_name(uid: str) -> str:
    """A stable file-system-safe name per UID (the UID itself when it is plain)."""
    if _SAFE_UID.fullmatch(uid) and uid not in (".", ".."):
        return f"{uid}.ics"
    return hashlib.sha256(uid.encode()).hexdigest()[:40] + ".ics"


def diff_feed(known: Mapping[str, str], resources: Mapping[str, str]) -> FeedDiff:
    """What applying `resources` (name -> text) to a mirror holding `known` (name -> etag) does."""
    new: dict[str, str] = {}
    changed: dict[str, str] = {}
    unchanged = 0
    for name, text in resources.items():
        etag = etag_of(text)
        if name not in known:
            new[name] = etag
        elif known[name] != etag:
            changed[name] = etag
        else:
            unchanged += 1
    removed = sorted(name for name in known if name not in resources)
    return FeedDiff(new, changed, removed, unchanged)


# --- splitting ---------------------------------------------------------------------------


@dataclass
class _Component:
    name: str
    lines: list[str]  # physical lines, exactly as in the feed, BEGIN and END included

    def props(self, wanted: str) -> list[str]:
        """Unfolded values of this component's own top-level property `wanted`. Cheap tests
        first: a feed of thousands of events is read line by line in Python."""
        out = []
        depth = 0
        size = len(wanted)
        lines = self.lines
        for i in range(1, len(lines) - 1):
            line = lines[i]
            head = line[:6].upper()
            if head == "BEGIN:":
                depth += 1
            elif head[:4] == "END:":
                depth -= 1
            elif depth == 0 and line[:size].upper() == wanted and line[size : size + 1] in (":", ";"):
                j = i + 1
                while j < len(lines) and lines[j][:1] in (" ", "\t"):
                    line += lines[j][1:]
                    j += 1
                out.append(_value(line))
        return out

    def tzids(self) -> list[str]:
        found: list[str] = []
        for logical in _logical(self.lines):
            if ";TZID=" not in logical.upper():
                continue
            params = logical[: len(logical) - len(_value(logical)) - 1] if ":" in logical else logical
            for quoted, plain in _TZID_PARAM.findall(params):
                tzid = quoted or plain
                if tzid and tzid not in found:
                    found.append(tzid)
        return found


def _physical_lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _logical(lines: list[str]) -> list[str]:
    """Unfolded content lines (RFC 5545 §3.1)."""
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] += line[1:]
        elif line:
            out.append(line)
    return out


def _name(logical: str) -> str:
    return re.split(r"[;:]", logical, maxsplit=1)[0].strip().upper()


def _value(logical: str) -> str:
    """The value after the first colon outside a quoted parameter value."""
    quoted = False
    for i, ch in enumerate(logical):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return logical[i + 1 :]
    return ""


def _begin_end(line: str) -> tuple[str, str] | None:
    if line[:1] not in ("B", "E", "b", "e"):  # most lines: one cheap test
        return None
    head, sep, value = line.partition(":")
    key = head.strip().upper()
    if sep and key in ("BEGIN", "END"):
        return key, value.strip().upper()
    return None


def _top_level(text: str) -> tuple[list[list[str]], list[_Component], int]:
    """(calendar-level lines of each VCALENDAR, their components in order, VCALENDARs found)."""
    cal_lines: list[list[str]] = []
    components: list[_Component] = []
    current: _Component | None = None
    depth = 0
    for line in _physical_lines(text):
        mark = _begin_end(line)
        if depth == 0:
            if mark == ("BEGIN", "VCALENDAR"):
                depth = 1
                cal_lines.append([])
            continue
        if depth == 1:
            if mark == ("END", "VCALENDAR"):
                depth = 0
            elif mark is not None and mark[0] == "BEGIN":
                current = _Component(mark[1], [line])
                depth = 2
            elif line:
                cal_lines[-1].append(line)
            continue
        assert current is not None
        if not line:
            continue
        current.lines.append(line)
        if mark is not None:
            depth += 1 if mark[0] == "BEGIN" else -1
        if depth == 1:
            components.append(current)
            current = None
    return cal_lines, components, len(cal_lines)


def _calendar_head(cal_lines: list[list[str]]) -> list[str]:
    first = cal_lines[0] if cal_lines else []
    head: list[str] = []
    i = 0
    while i < len(first):  # keep a kept property's folded continuation lines with it
        line = first[i]
        keep = _name(line) in _KEPT_CALENDAR_PROPS
        if keep:
            head.append(line)
        i += 1
        while i < len(first) and first[i][:1] in (" ", "\t"):
            if keep:
                head.append(first[i])
            i += 1
    names = {_name(line) for line in head}
    if "VERSION" not in names:
        head.insert(0, "VERSION:2.0")
    if "PRODID" not in names:
        head.insert(1, "PRODID:-//calmirror//feed//EN")
    return head


def _with_uid(event: _Component) -> str:
    """A VEVENT without UID gets one derived from its own text, so it is still a resource
    (the same text gets the same UID at every poll)."""
    uid = "calmirror-feed-" + hashlib.sha256("\n".join(event.lines).encode()).hexdigest()[:32]
    event.lines.insert(1, f"UID:{uid}")
    return uid


def split_feed(text: str) -> FeedSplit:
    """One resource per UID: the UID's VEVENTs in feed order, after the VTIMEZONEs they name."""
    cal_lines, components, calendars = _top_level(text)
    zones: dict[str, _Component] = {}
    by_uid: dict[str, list[_Component]] = {}
    ignored = 0
    for comp in components:
        if comp.name == "VTIMEZONE":
            for tzid in comp.props("TZID")[:1]:
                zones.setdefault(tzid.strip(), comp)
        elif comp.name == "VEVENT":
            found = comp.props("UID")
            uid = found[0].strip() if found and found[0].strip() else _with_uid(comp)
            by_uid.setdefault(uid, []).append(comp)
        else:
            ignored += 1
    head = _calendar_head(cal_lines)
    resources: dict[str, str] = {}
    uids: dict[str, str] = {}
    for uid, events in by_uid.items():
        needed: list[str] = []
        for event in events:
            needed.extend(t for t in event.tzids() if t not in needed)
        lines = ["BEGIN:VCALENDAR", *head]
        for tzid in needed:
            if tzid in zones:
                lines.extend(zones[tzid].lines)
        for event in events:
            lines.extend(event.lines)
        lines.append("END:VCALENDAR")
        name = resource_name(uid)
        resources[name] = "\r\n".join(lines) + "\r\n"
        uids[name] = uid
    return FeedSplit(resources, uids, ignored, calendars)
