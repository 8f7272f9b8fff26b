"""Compatible copies: what Radicale will store in place of an iCloud object it cannot take
verbatim, with the same busy time in every window a client can query. Pure: text and a
horizon date in, text out; no I/O, no clock.

Radicale keeps one UID per resource, so every fix stays inside the one resource:

- **Overrides without a master** (iCloud's invitation to single occurrences of someone
  else's series; Radicale: "Main component missing"): a master is added whose
  DTSTART is the first override's RECURRENCE-ID and whose RDATEs are the others'. Every
  instance of that master is overridden, so clients (and Radicale's time-range queries)
  see exactly the overrides, each at its own time.
- **RDATE;VALUE=PERIOD** (vobject: "PERIOD not supported"): each period becomes a plain
  RDATE at its start plus an override at that RECURRENCE-ID with the period's own end.
- **A COUNT or UNTIL beyond Radicale's occurrence limit** (`COUNT=1000000000`, apps'
  "forever"): the rule is bounded by an UNTIL at the last occurrence before the horizon,
  and never past the limit-th occurrence (so a secondly rule reaches less far: the exact
  text still counts in full for busy time). The horizon moves: `horizon_for(today)` is
  January 1st six years on, so it lies five to six years ahead and changes once a year;
  the mirror re-derives copies whose horizon is older (`MirrorEntry.horizon`).
- **Custom TZIDs** (Exchange's `Customized Time Zone`, Windows names defined in-object):
  Radicale's vobject keeps one process-wide zone per TZID name and would place a second
  definition by the first one's rules. Each defined custom TZID is renamed
  `<name> <digest of its definition>`, unique per definition and stable.

Every VEVENT of a copy carries `X-CALMIRROR-COMPATIBLE-COPY:<reasons>` and the VCALENDAR
`X-CALMIRROR-COPY-OF:<remote href>`. Privacy (busy-only) and the mirror marker are applied
afterwards, to the copy, exactly as to an exact copy (`transform.mirror_copy`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from itertools import islice

import icalendar
from dateutil import rrule

from calmirror.availability import zones

COMPAT_MARKER = "X-CALMIRROR-COMPATIBLE-COPY"
COPY_OF = "X-CALMIRROR-COPY-OF"
HORIZON_YEARS = 6  # January 1st this many years on: five to six years ahead

MASTERLESS = "overrides without a master: master added"
PERIODS = "RDATE periods as overrides"
BOUNDED = "rule bounded by UNTIL"
ZONES = "custom time zones renamed per definition"

_TZID_LINE = re.compile(r"^TZID:(.*?)\r?$", re.MULTILINE)
_TZID_PARAM = re.compile(r'(;TZID=)("[^"]*"|[^;:]*)', re.IGNORECASE)
_COUNT = re.compile(r"COUNT=(\d+)", re.IGNORECASE)


# Radicale's own guess of one occurrence's length per FREQ (radicale.item RRULE_FREQUENCIES_TO_INTERVAL).
_FREQ_SECONDS = {
    "YEARLY": 86400 * 365,
    "MONTHLY": 86400 * 365 / 12,
    "WEEKLY": 86400 * 7,
    "DAILY": 86400,
    "HOURLY": 3600,
    "MINUTELY": 60,
    "SECONDLY": 1,
}


def _freq(parts: list[str]) -> str:
    return next((p.split("=", 1)[1].upper() for p in parts if p.upper().startswith("FREQ=")), "")


def horizon_for(today: dt.date) -> dt.date:
    return dt.date(today.year + HORIZON_YEARS, 1, 1)


@dataclass(frozen=True)
class Compatible:
    text: str
    reasons: tuple[str, ...]
    horizon: str = ""  # ISO date when the copy depends on the horizon (a bounded rule)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def has_custom_zones(text: str) -> bool:
    """Cheap first look (a regex over the text): whether a VTIMEZONE names a zone that is not
    IANA's. Apple's own events never do, so 10,000 of them cost almost nothing here."""
    return any(zones.is_custom(name.strip()) for name in _TZID_LINE.findall(text))


def may_need_bounding(text: str, max_occurrences: int) -> bool:
    """Whether some RRULE's COUNT is over the limit, or it has an UNTIL (which Radicale
    estimates and may refuse)."""
    for line in _unfold(text).splitlines():
        if line.upper().startswith("RRULE"):
            count = _COUNT.search(line)
            if (count and int(count.group(1)) > max_occurrences) or "UNTIL=" in line.upper():
                return True
    return False


def compatible_copy(
    text: str, href: str, horizon: dt.date, max_occurrences: int, *, refused: str = ""
) -> Compatible | None:
    """The compatible copy of one object, or None when nothing in it needs changing (or it
    cannot be read well enough to change). `refused` is Radicale's reason for refusing the
    exact text, when known: a bounded UNTIL is used only when the rule was the trouble."""
    try:
        resource = _Resource.parse(text)
    except ValueError:
        return None
    reasons: list[str] = []
    if resource.rename_custom_zones():
        reasons.append(ZONES)
    if resource.add_missing_master():
        reasons.append(MASTERLESS)
    if resource.split_periods():
        reasons.append(PERIODS)
    bounded = ""
    wants_bound = not refused or "recurrence" in refused.lower() or "rrule" in refused.lower()
    if wants_bound and resource.bound_rules(horizon, max_occurrences):
        reasons.append(f"{BOUNDED} (horizon {horizon.isoformat()})")
        bounded = horizon.isoformat()
    if not reasons:
        return None
    resource.mark(", ".join(reasons), href)
    return Compatible(resource.render(), tuple(reasons), bounded)


# --- a small line-level model of one resource --------------------------------------------


def _unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]", "", text)


def _name(line: str) -> str:
    return re.split(r"[;:]", line, maxsplit=1)[0].upper()


def _value(line: str) -> str:
    return _split(line)[1]


def _split(line: str) -> tuple[str, str]:
    """(name and parameters, value): the first colon outside a quoted parameter."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:index], line[index + 1 :]
    raise ValueError(f"no colon in {line[:40]!r}")


def _params(line: str) -> str:
    """The parameters of a property line, with their leading `;`, or ''."""
    head = _split(line)[0]
    return head[len(head.split(";", 1)[0]) :]


@dataclass
class _Event:
    lines: list[str]  # unfolded, without BEGIN/END, nested components kept as lines

    def top(self) -> list[tuple[int, str]]:
        """(index, line) of the event's own properties (not those of a nested VALARM)."""
        out, depth = [], 0
        for index, line in enumerate(self.lines):
            upper = line.upper()
            if upper.startswith("BEGIN:"):
                depth += 1
            elif upper.startswith("END:"):
                depth -= 1
            elif depth == 0:
                out.append((index, line))
        return out

    def get(self, name: str) -> str | None:
        return next((line for _, line in self.top() if _name(line) == name), None)

    def all(self, name: str) -> list[str]:
        return [line for _, line in self.top() if _name(line) == name]

    def without(self, *names: str) -> list[str]:
        """Own properties other than `names`, nested components dropped."""
        return [line for _, line in self.top() if _name(line) not in names]


@dataclass
class _Resource:
    head: list[str]  # VCALENDAR properties
    timezones: list[list[str]]  # VTIMEZONE blocks, BEGIN/END included
    events: list[_Event]
    others: list[list[str]] = field(default_factory=list)  # any other component, kept

    @classmethod
    def parse(cls, text: str) -> _Resource:
        lines = [line for line in _unfold(text.lstrip("\ufeff")).splitlines() if line.strip()]
        if not lines or lines[0].upper() != "BEGIN:VCALENDAR" or lines[-1].upper() != "END:VCALENDAR":
            raise ValueError("not one VCALENDAR")
        resource = cls([], [], [])
        block: list[str] | None = None
        depth = 0
        for line in lines[1:-1]:
            upper = line.upper()
            if block is None:
                if upper.startswith("BEGIN:"):
                    block, depth = [line], 1
                else:
                    resource.head.append(line)
                continue
            block.append(line)
            if upper.startswith("BEGIN:"):
                depth += 1
            elif upper.startswith("END:"):
                depth -= 1
                if depth == 0:
                    kind = block[0].upper()
                    if kind == "BEGIN:VEVENT":
                        resource.events.append(_Event(block[1:-1]))
                    elif kind == "BEGIN:VTIMEZONE":
                        resource.timezones.append(block)
                    else:
                        resource.others.append(block)
                    block = None
        if block is not None or not resource.events:
            raise ValueError("unterminated component or no VEVENT")
        for line in resource.head + [line for event in resource.events for line in event.lines]:
            _split(line)  # every content line has its colon
        return resource

    # --- the fixes --------------------------------------------------------------------

    def rename_custom_zones(self) -> bool:
        renames: dict[str, str] = {}
        for block in self.timezones:
            tzid_line = next((line for line in block if _name(line) == "TZID"), None)
            if tzid_line is None:
                continue
            tzid = _value(tzid_line).strip()
            if zones.is_custom(tzid):
                renames[tzid] = f"{tzid} {zones.definition_digest(chr(10).join(block))}"
        if not renames:
            return False
        for block in self.timezones:
            for index, line in enumerate(block):
                if _name(line) == "TZID" and _value(line).strip() in renames:
                    block[index] = "TZID:" + renames[_value(line).strip()]
        for event in self.events:
            event.lines = [self._rename_params(line, renames) for line in event.lines]
        return True

    @staticmethod
    def _rename_params(line: str, renames: dict[str, str]) -> str:
        head, value = _split(line)

        def swap(match: re.Match[str]) -> str:
            raw = match.group(2)
            name = raw.strip('"')
            if name not in renames:
                return match.group(0)
            new = renames[name]
            return match.group(1) + (f'"{new}"' if raw.startswith('"') else new)

        return _TZID_PARAM.sub(swap, head) + ":" + value

    def add_missing_master(self) -> bool:
        overrides = [event for event in self.events if event.get("RECURRENCE-ID")]
        if not overrides or len(overrides) != len(self.events) or len(overrides) < 2:
            return False  # has a master, or one lone override (Radicale takes that as its own master)
        first = overrides[0]
        rid = first.get("RECURRENCE-ID") or ""
        master = list(first.without("RECURRENCE-ID", "DTSTART", "DTEND", "DURATION", "RANGE"))
        master.append("DTSTART" + _params(rid).replace(";RANGE=THISANDFUTURE", "") + ":" + _value(rid))
        for other in overrides[1:]:
            other_rid = other.get("RECURRENCE-ID") or ""
            master.append("RDATE" + _params(other_rid).replace(";RANGE=THISANDFUTURE", "") + ":" + _value(other_rid))
        # Every instance is overridden, so the master itself never shows; transparent all the
        # same, so nothing could count it twice.
        master = [line for line in master if _name(line) != "TRANSP"] + ["TRANSP:TRANSPARENT"]
        self.events.insert(0, _Event(master))
        return True

    def split_periods(self) -> bool:
        changed = False
        for event in list(self.events):
            periods = [line for line in event.all("RDATE") if "VALUE=PERIOD" in _params(line).upper()]
            if not periods:
                continue
            changed = True
            overridden = {_value(e.get("RECURRENCE-ID") or ":").strip() for e in self.events}
            event.lines = [line for line in event.lines if line not in periods]
            base = event.without("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "EXRULE")
            for line in periods:
                params = re.sub(r";VALUE=PERIOD", "", _params(line), flags=re.IGNORECASE)
                for period in _value(line).split(","):
                    start, _, end = period.strip().partition("/")
                    event.lines.append(f"RDATE{params}:{start}")
                    if start in overridden:
                        continue  # an override of that instance already says when it ends
                    overridden.add(start)
                    finish = f"DURATION:{end}" if end.upper().startswith(("P", "+P", "-P")) else f"DTEND{params}:{end}"
                    self.events.append(
                        _Event([*base, f"RECURRENCE-ID{params}:{start}", f"DTSTART{params}:{start}", finish])
                    )
        return changed

    def bound_rules(self, horizon: dt.date, limit: int) -> bool:
        changed = False
        for event in self.events:
            for index, line in event.top():
                if _name(line) != "RRULE":
                    continue
                bounded = self._bounded(event, _value(line), horizon, limit)
                if bounded is not None and bounded != _value(line):
                    event.lines[index] = "RRULE" + _params(line) + ":" + bounded
                    changed = True
        return changed

    def _bounded(self, event: _Event, rule: str, horizon: dt.date, limit: int) -> str | None:
        """The rule with COUNT/UNTIL replaced by an UNTIL at its last occurrence before the
        horizon, at most the limit-th; None when the rule ends well before either."""
        start_line = event.get("DTSTART")
        if start_line is None:
            return None
        parts = [p for p in rule.split(";") if p]
        has_end = any(p.upper().startswith(("COUNT=", "UNTIL=")) for p in parts)
        if not has_end:
            return None  # Radicale does not count open-ended rules
        start, form, tz = self._start(start_line)
        # Radicale also estimates (UNTIL - DTSTART) / one FREQ unit, ignoring INTERVAL and
        # filters, and counts RDATEs with the rule: stay under both, with a day to spare
        # for the zone offset.
        unit = _FREQ_SECONDS.get(_freq(parts), 1.0)
        limit -= 1 + sum(_value(line).count(",") + 1 for line in event.all("RDATE"))
        estimated = start + dt.timedelta(seconds=unit * limit) - dt.timedelta(days=1)
        stop = min(dt.datetime.combine(horizon, dt.time()), estimated)
        try:
            walk = rrule.rrulestr(rule, dtstart=start, ignoretz=True, cache=False)
            kept = list(islice(walk.xafter(start - dt.timedelta(seconds=1), inc=True), limit + 1))
        except (ValueError, TypeError, OverflowError):
            return None
        inside = [occurrence for occurrence in kept if occurrence < stop][:limit]
        if len(inside) == len(kept) and len(kept) <= limit:
            return None  # ends before both the horizon and the limit: Radicale refused something else
        if not inside:
            return None
        last = inside[-1]
        plain = [p for p in parts if not p.upper().startswith(("COUNT=", "UNTIL="))]
        return ";".join([*plain, "UNTIL=" + self._until(last, form, tz)])

    def _start(self, line: str) -> tuple[dt.datetime, str, dt.tzinfo | None]:
        """DTSTART as a naive local date-time, its form (date, floating, utc, zoned), its zone."""
        value = _value(line).strip()
        params = _params(line).upper()
        if ("VALUE=DATE" in params and "VALUE=DATE-TIME" not in params) or len(value) == 8:
            return dt.datetime.strptime(value[:8], "%Y%m%d"), "date", None
        naive = dt.datetime.strptime(value.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
        if value.upper().endswith("Z"):
            return naive, "utc", dt.UTC
        tzid = re.search(r'TZID=("[^"]*"|[^;:]*)', _params(line), re.IGNORECASE)
        if not tzid:
            return naive, "floating", None
        tz, _ = zones.zone_for(tzid.group(1).strip('"'), self._own_zones())
        return naive, "zoned" if tz else "floating", tz

    def _own_zones(self) -> dict[str, icalendar.Timezone]:
        own: dict[str, icalendar.Timezone] = {}
        for block in self.timezones:
            try:
                wrapped = icalendar.Calendar.from_ical("\r\n".join(["BEGIN:VCALENDAR", *block, "END:VCALENDAR", ""]))
            except Exception:
                continue
            for tz in wrapped.walk("VTIMEZONE"):
                if isinstance(tz, icalendar.Timezone) and "TZID" in tz:
                    own[str(tz["TZID"])] = tz
        return own

    @staticmethod
    def _until(last: dt.datetime, form: str, tz: dt.tzinfo | None) -> str:
        if form == "date":
            return last.strftime("%Y%m%d")
        if form == "floating":
            return last.strftime("%Y%m%dT%H%M%S")
        aware = last.replace(tzinfo=tz) if form == "zoned" else last.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    # --- marking and output -----------------------------------------------------------

    def mark(self, reasons: str, href: str) -> None:
        self.head = [line for line in self.head if _name(line) not in (COPY_OF,)] + [f"{COPY_OF}:{_escape(href)}"]
        for event in self.events:
            event.lines = [line for line in event.lines if _name(line) != COMPAT_MARKER]
            event.lines.insert(0, f"{COMPAT_MARKER}:{_escape(reasons)}")

    def render(self) -> str:
        lines = ["BEGIN:VCALENDAR", *self.head]
        for block in self.timezones:
            lines.extend(block)
        for event in self.events:
            lines.extend(["BEGIN:VEVENT", *event.lines, "END:VEVENT"])
        for block in self.others:
            lines.extend(block)
        lines.append("END:VCALENDAR")
        return "".join(_fold(line) + "\r\n" for line in lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str, width: int = 75) -> str:
    """RFC 5545 folding at 75 octets, never inside a UTF-8 sequence."""
    data = line.encode("utf-8")
    if len(data) <= width:
        return line
    parts, start, limit = [], 0, width
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start, limit = end, width - 1
    return "\r\n ".join(parts)
