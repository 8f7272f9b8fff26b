"""Compatible copies of series whose reading clients disagree on, written so every reader
sees the busy time the engine counts (`compat` applies these with the other fixes).

- **A DATE UNTIL on a rule of timed occurrences** (`DTSTART:20261210T100000`,
  `RRULE:FREQ=DAILY;UNTIL=20261212`; invalid by RFC 5545, written by some clients and held
  by iCloud): dateutil and recurring-ical-events end the rule at that day's midnight, vobject
  (Radicale) at DTSTART's time of day on it. Busy time counts the whole last day
  (`availability.recurrence._until_of_timed_rule`), so the copy writes the UNTIL as the last
  second of that day in the event's zone: in UTC for zoned and UTC times, as wall time for
  floating ones.
- **An override of an occurrence an EXDATE removes**: recurring-ical-events drops the
  override with the occurrence, Radicale shows it. Busy time counts it
  (`availability.recurrence._overrides_kept`), so the copy drops those EXDATE values: the
  occurrence exists and the override describes it, for every reader.
- **RANGE=THISANDFUTURE overrides**: Radicale reads one as a single override, so later
  occurrences stayed at their old times for clients; the copy writes one override per later
  occurrence up to the horizon (`this_and_future`).
- **A rule that never matches** (`FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30`): RFC 5545 makes
  DTSTART an occurrence anyway, and busy time counts it; Radicale showed nothing of the
  event. The copy adds DTSTART as an RDATE.
- **EXRULE** (RFC 2445's exception rule, deprecated by RFC 5545): recurring-ical-events, and
  so busy time, does not read it, erring towards busy; Radicale does. The copy drops it, so
  clients show every occurrence busy time counts.
- **A COUNT rule that does not produce DTSTART** (`BYDAY=MO;COUNT=3` from a Tuesday): RFC
  5545 counts DTSTART as the first of the COUNT, as busy time and vobject (Radicale) do;
  dateutil and recurring-ical-events add it on top, one too many for a client expanding the
  copy itself. The copy writes the COUNT as an UNTIL at the last occurrence, which every
  reader ends alike (`count_as_until`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from itertools import islice

from dateutil import rrule
from icalendar.prop import vRecur

from calmirror.availability import rrule_bounds as rb
from calmirror.compat_bounds import start_of, until_value
from calmirror.ical_lines import Event, Resource, name_of, params_of, split, value_of

DATE_UNTIL = "DATE UNTIL of a timed rule written as the end of that day"
OVERRIDDEN_EXDATES = "EXDATEs of overridden occurrences dropped"
EXRULES = "EXRULE dropped (busy time does not read it)"
THIS_AND_FUTURE = "RANGE=THISANDFUTURE written as one override per later occurrence"
START_AS_RDATE = "DTSTART of a rule that never matches added as an RDATE"
COUNT_AS_UNTIL = "COUNT of a rule that does not produce DTSTART written as an UNTIL"
COUNT_WALK_LIMIT = 100_000  # larger COUNTs are left to `compat_bounds`, which ends them sooner

_DATE_UNTIL = re.compile(r"^RRULE[;:][^\r\n]*UNTIL=\d{8}(?:[;\r\n]|$)", re.MULTILINE | re.IGNORECASE)
_TIMED_START = re.compile(r"^DTSTART(?:;[^\r\n]*)?:\d{8}T", re.MULTILINE | re.IGNORECASE)


def needs_series_fixes(text: str) -> bool:
    """Cheap first look (a few regexes, no parse): whether a fix here may apply."""
    if _DATE_UNTIL.search(text) and _TIMED_START.search(text):
        return True
    upper = text.upper()
    if ("\nEXDATE" in upper and "\nRECURRENCE-ID" in upper) or "\nEXRULE" in upper or "THISANDFUTURE" in upper:
        return True
    return has_start_left_out(text) or has_count_past_start(text)


def drop_exrules(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        drop = {index for index, line in event.top() if name_of(line) == "EXRULE"}
        if drop:
            event.lines = [line for index, line in enumerate(event.lines) if index not in drop]
            changed = True
    return changed


def until_as_end_of_day(resource: Resource) -> bool:
    changed = False
    for event in resource.events:
        start_line = event.get("DTSTART")
        if start_line is None:
            continue
        for index, line in event.top():
            if name_of(line) != "RRULE":
                continue
            parts = value_of(line).split(";")
            for n, part in enumerate(parts):
                key, _, value = part.partition("=")
                if key.upper() != "UNTIL" or not re.fullmatch(r"\d{8}", value.strip()):
                    continue
                try:
                    end = _end_of_day(resource, start_line, value.strip())
                except (ValueError, OverflowError):
                    continue
                if end is not None:
                    parts[n] = f"UNTIL={end}"
                    event.lines[index] = "RRULE" + params_of(line) + ":" + ";".join(parts)
                    changed = True
    return changed


def _end_of_day(resource: Resource, start_line: str, day: str) -> str | None:
    _, form, tz = start_of(resource, start_line)
    if form == "date":
        return None  # a DATE UNTIL on all-day occurrences is the valid form
    if form == "floating":
        return f"{day}T235959"
    last = dt.datetime.strptime(day, "%Y%m%d").replace(hour=23, minute=59, second=59, tzinfo=tz)
    return last.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def keep_overrides(resource: Resource) -> bool:
    """Drop each EXDATE value that names an occurrence an override of the same UID describes."""
    named: dict[str, set[tuple[object, ...]]] = {}
    for event in resource.events:
        rid, uid = event.get("RECURRENCE-ID"), event.get("UID")
        if rid is not None and uid is not None:
            named.setdefault(value_of(uid).strip(), set()).update(_keys(resource, rid))
    changed = False
    for event in resource.events:
        uid = event.get("UID")
        overridden = named.get(value_of(uid).strip(), set()) if uid is not None else set()
        if overridden and event.get("RECURRENCE-ID") is None:
            changed = _drop_named(resource, event, overridden) or changed
    return changed


def _drop_named(resource: Resource, event: Event, overridden: set[tuple[object, ...]]) -> bool:
    drop: set[int] = set()
    rewritten: dict[int, str] = {}
    for index, line in event.top():
        if name_of(line) != "EXDATE":
            continue
        head, value = split(line)
        values = [v for v in value.split(",") if v.strip()]
        left = [v for v in values if not (_keys(resource, f"{head}:{v.strip()}") & overridden)]
        if len(left) == len(values):
            continue
        if left:
            rewritten[index] = head + ":" + ",".join(left)
        else:
            drop.add(index)
    if not drop and not rewritten:
        return False
    event.lines = [rewritten.get(i, line) for i, line in enumerate(event.lines) if i not in drop]
    return True


def _keys(resource: Resource, line: str) -> set[tuple[object, ...]]:
    """How recurring-ical-events identifies the instant of a DTSTART-like line (as
    `availability.library_series` corrects it: UTC matches UTC, wall time wall time; a
    floating time is compared as it is, a date as its day)."""
    try:
        naive, form, tz = start_of(resource, line)
    except (ValueError, OverflowError):
        return set()
    if form == "date":
        return {("date", naive.date())}
    if form == "floating":
        return {("utc", naive)}
    utc = naive.replace(tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None)
    return {("utc", utc), ("wall", naive)}


def this_and_future(resource: Resource, horizon: dt.date, room: int) -> bool:
    """Each RANGE=THISANDFUTURE override written out as one override per later occurrence up
    to the horizon (at most `room` of them), where master, RECURRENCE-ID and override share one
    time form: Radicale reads the range as a single override, so later occurrences stayed at
    their old times for clients while busy time (recurring-ical-events) moves them."""
    changed = False
    for master in [e for e in resource.events if e.get("RECURRENCE-ID") is None and e.get("RRULE")]:
        uid = master.get("UID")
        for override in [e for e in resource.events if e.get("UID") == uid and e is not master]:
            rid = override.get("RECURRENCE-ID") or ""
            if "RANGE=THISANDFUTURE" not in params_of(rid).upper():
                continue
            made = _later_overrides(resource, master, override, horizon, room)
            if made is None:
                continue
            override.lines = [_no_range(line) if name_of(line) == "RECURRENCE-ID" else line for line in override.lines]
            resource.events.extend(made)
            room -= len(made)
            changed = True
    return changed


def _no_range(line: str) -> str:
    return (
        "RECURRENCE-ID"
        + re.sub(r";RANGE=THISANDFUTURE", "", params_of(line), flags=re.IGNORECASE)
        + ":"
        + value_of(line)
    )


def _later_overrides(
    resource: Resource, master: Event, override: Event, horizon: dt.date, room: int
) -> list[Event] | None:
    start_line, rid_line, moved_line = master.get("DTSTART"), override.get("RECURRENCE-ID"), override.get("DTSTART")
    if start_line is None or rid_line is None or moved_line is None:
        return None
    params = params_of(start_line)
    if params_of(_no_range(rid_line)) != params or params_of(moved_line) != params:
        return None  # mixed time forms: left as they are
    end_line = override.get("DTEND")
    if end_line is not None and params_of(end_line) != params:
        return None
    try:
        first, form, tz = start_of(resource, start_line)
        at, _, _ = start_of(resource, rid_line)
        moved, _, _ = start_of(resource, moved_line)
        length = start_of(resource, end_line)[0] - moved if end_line is not None else None
        walk = rrule.rrulestr(_wall_until(value_of(master.get("RRULE") or ""), tz), dtstart=first, ignoretz=True)
    except (ValueError, TypeError, OverflowError):
        return None
    taken = {_keys_of(resource, e.get("RECURRENCE-ID") or "") for e in resource.events if e.get("RECURRENCE-ID")}
    removed = {key for line in master.all("EXDATE") for key in _date_list_keys(resource, line)}
    stop = dt.datetime.combine(horizon, dt.time())
    later = []
    for wall in islice(walk.xafter(at, inc=False), room):  # (past `room`, later ones keep their times)
        if wall >= stop:
            break
        later.append(wall)
    shift = moved - at
    base = list(override.without("RECURRENCE-ID", "DTSTART", "DTEND"))
    made = []
    for wall in later:
        rid = f"RECURRENCE-ID{params}:{_format(wall, form)}"
        if _keys_of(resource, rid) in taken or _keys(resource, rid) & removed:
            continue
        lines = [*base, rid, f"DTSTART{params}:{_format(wall + shift, form)}"]
        if length is not None:
            lines.append(f"DTEND{params}:{_format(wall + shift + length, form)}")
        made.append(Event(lines))
    return made


def _wall_until(rule: str, tz: dt.tzinfo | None) -> str:
    """The rule with a UTC UNTIL read as wall time in the event's zone (the walk is naive)."""
    parts = rule.split(";")
    for n, part in enumerate(parts):
        key, _, value = part.partition("=")
        if key.upper() == "UNTIL" and value.upper().endswith("Z") and tz is not None:
            utc = dt.datetime.strptime(value[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
            parts[n] = "UNTIL=" + utc.astimezone(tz).strftime("%Y%m%dT%H%M%S")
    return ";".join(parts)


def _format(wall: dt.datetime, form: str) -> str:
    if form == "date":
        return wall.strftime("%Y%m%d")
    return wall.strftime("%Y%m%dT%H%M%S") + ("Z" if form == "utc" else "")


def _keys_of(resource: Resource, line: str) -> frozenset[tuple[object, ...]]:
    return frozenset(_keys(resource, line))


def _date_list_keys(resource: Resource, line: str) -> set[tuple[object, ...]]:
    """The instants an EXDATE or RDATE line names (`_keys` of each value)."""
    head, value = split(line)
    return {key for v in value.split(",") if v.strip() for key in _keys(resource, f"{head}:{v.strip()}")}


# --- a DTSTART the rule does not produce ------------------------------------------------------

_START_VALUE = re.compile(r"^DTSTART(?:;[^\r\n:]*)?:(\d{8})(?:T(\d{6}))?", re.MULTILINE | re.IGNORECASE)
_FILTERED_RULE = re.compile(r"^RRULE:([^\r\n]*\bBY[^\r\n]*)\r?$", re.MULTILINE | re.IGNORECASE)
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@functools.lru_cache(maxsize=4096)
def start_left_out(start: str, rule: str) -> bool:
    """Whether a rule with filters produces no occurrence at all (30 February), so that
    Radicale shows nothing of the event: RFC 5545 makes DTSTART an occurrence anyway, busy
    time counts it, and vobject adds it only beside a rule's own first occurrence. (A rule
    that produces others but not DTSTART is read alike: vobject adds DTSTART to them.) A
    weekly rule by weekday, what Apple and Outlook write, always produces some.

    Kept per (start, rule): the first look (`has_start_left_out`) asks it of every resource,
    most often about the first rule and start of its VTIMEZONE, the same few for a whole
    calendar (30-55 µs each time)."""
    parts = {k.upper(): v for k, _, v in (p.partition("=") for p in rule.split(";") if p)}
    if (
        set(parts) <= {"FREQ", "BYDAY", "INTERVAL", "COUNT", "UNTIL", "WKST"}
        and parts.get("FREQ", "").upper() == "WEEKLY"
    ):
        return False
    try:
        value = start.strip().upper().rstrip("Z")
        at = (
            dt.datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
            if "T" in value
            else dt.datetime.strptime(value[:8], "%Y%m%d")
        )
        return not rb.feasible(rb.parts_of(vRecur.from_ical(rule)), at)
    except (ValueError, TypeError, KeyError, OverflowError):
        return False


def has_start_left_out(text: str) -> bool:
    """Cheap first look for `start_as_rdate`: the first DTSTART and filtered RRULE by regex."""
    rule = _FILTERED_RULE.search(text)
    if rule is None:
        return False
    start = _START_VALUE.search(text)
    return start is not None and start_left_out(
        start.group(1) + ("T" + start.group(2) if start.group(2) else ""), rule.group(1)
    )


def start_as_rdate(resource: Resource) -> bool:
    """A master whose rule never matches gets its DTSTART as an RDATE too, so every reader
    shows the occurrence busy time counts (an EXDATE of it still removes it)."""
    changed = False
    for event in resource.events:
        start, rules = event.get("DTSTART"), event.all("RRULE")
        if start is None or len(rules) != 1 or event.get("RECURRENCE-ID") is not None:
            continue
        if not start_left_out(value_of(start), value_of(rules[0])):
            continue
        keys = _keys(resource, start)
        if any(keys & _date_list_keys(resource, line) for line in [*event.all("EXDATE"), *event.all("RDATE")]):
            continue  # removed by an EXDATE, or already an RDATE
        head, value = split(start)
        event.lines.append("RDATE" + head[len("DTSTART") :] + ":" + value.strip())
        changed = True
    return changed


# --- a COUNT that DTSTART counts toward ---------------------------------------------------------

_COUNTED_RULE = re.compile(r"^RRULE:([^\r\n]*\bCOUNT=[^\r\n]*)\r?$", re.MULTILINE | re.IGNORECASE)


def _rule_left_out(at: dt.datetime, rule: str) -> tuple[list[str], dict[str, list[object]], int] | None:
    """(the rule's text parts but COUNT, the rule to walk without COUNT, COUNT) when a rule
    that can match has a COUNT that DTSTART `at` counts toward without being the first
    occurrence of its walk (`rrule_bounds.start_counted`); None otherwise."""
    if "COUNT=" not in rule.upper() or "BY" not in rule.upper():
        return None
    try:
        parts = rb.parts_of(vRecur.from_ical(rule))
        if "COUNT" not in parts or "UNTIL" in parts or not rb.feasible(parts, at):
            return None  # (a rule that never matches: `start_as_rdate`)
        if rb.start_counted(parts, at) is parts:
            return None
        walk = {k: v for k, v in parts.items() if k != "COUNT"}
        walk = rb.daily_equivalent(walk, at) or walk  # the same occurrences, walked by day
        count = int(parts["COUNT"][0])
    except (ValueError, TypeError, KeyError, OverflowError):
        return None
    return [p for p in rule.split(";") if p and not p.upper().startswith("COUNT=")], walk, count


def has_count_past_start(text: str) -> bool:
    """Cheap first look for `count_as_until`: a filtered COUNT rule some event's DTSTART is
    not the first occurrence of (by regex, no parse)."""
    rules = [m.group(1) for m in _COUNTED_RULE.finditer(text)]
    if not rules:
        return False
    starts = _START_VALUE.finditer(text, max(text.upper().find("BEGIN:VEVENT"), 0))
    for start in starts:
        try:
            at = dt.datetime.strptime(start.group(1) + (start.group(2) or "000000"), "%Y%m%d%H%M%S")
        except ValueError:
            continue
        if any(_rule_left_out(at, rule) is not None for rule in rules):
            return True
    return False


def count_as_until(resource: Resource) -> bool:
    """A master's COUNT rule whose walk does not start at DTSTART ends at an UNTIL on its
    (COUNT - 1)-th occurrence (DTSTART is the first), or goes when COUNT is 1."""
    changed = False
    for event in resource.events:
        start = event.get("DTSTART")
        if start is None or event.get("RECURRENCE-ID") is not None:
            continue
        drop: set[int] = set()
        for index, line in event.top():
            if name_of(line) != "RRULE":
                continue
            try:
                at, form, tz = start_of(resource, start)
            except (ValueError, OverflowError):
                break
            found = _rule_left_out(at, value_of(line))
            if found is None or found[2] > COUNT_WALK_LIMIT:
                continue
            plain, walk, count = found
            text = vRecur(walk).to_ical().decode()
            rest = list(islice(rrule.rrulestr(text, dtstart=at, ignoretz=True, cache=False), count - 1))
            if not rest:
                drop.add(index)  # COUNT=1: DTSTART alone
            else:
                event.lines[index] = (
                    "RRULE" + params_of(line) + ":" + ";".join([*plain, "UNTIL=" + until_value(rest[-1], form, tz)])
                )
            changed = True
        event.lines = [line for index, line in enumerate(event.lines) if index not in drop]
    return changed
