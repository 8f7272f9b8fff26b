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
  the mirror re-derives copies whose horizon is older (`MirrorEntry.horizon`). A rule so
  frequent that the limit would stop it before the horizon (every 90 minutes, every second),
  that runs past the horizon, loses its COUNT or UNTIL instead: the same up to the horizon,
  and reaching every window.
  One that ends before the horizon is written out as RDATEs instead, which Radicale does not
  count (`compat_rdates`); past 50,000 occurrences it stays cut, and its reason says so.
- **Custom TZIDs** (Exchange's `Customized Time Zone`, Windows names defined in-object):
  Radicale's vobject keeps one process-wide zone per TZID name and would place a second
  definition by the first one's rules. Each defined custom TZID is renamed
  `<name> <digest of its definition>`, unique per definition and stable.
- **A DATE UNTIL on a timed rule, an override of an EXDATEd occurrence, a COUNT rule that
  does not produce DTSTART**: shapes readers
  disagree on, written so every reader sees the busy time the engine counts (`compat_series`).
- **Dates beside a timed DTSTART, blanks around a TZID name** (`compat_dates`).
- **Rules in another calendar scale** (RFC 7529 RSCALE; Radicale refuses them): a Gregorian
  one becomes a plain rule, any other is dropped, as busy time reads them (`compat_scales`).
- **Bytes that are not UTF-8** (an old client's Windows-1252 `é`, kept exactly in iCloud's
  text, `raw_text`): read as Windows-1252; **NUL and other C0 controls** (no XML answer can
  carry them): dropped.
- **A UTF-8 byte-order mark** before `BEGIN:VCALENDAR` (some exporters write one; Radicale
  refuses the object as "not valid iCalendar"): dropped.
- **DTEND and DURATION both given** (not allowed; Radicale refuses it): DURATION is dropped,
  as busy time reads the DTEND.
- **An empty VTIMEZONE** (no STANDARD, no DAYLIGHT; Radicale refuses the object): dropped,
  its times written as busy time reads them (`compat_zones`).
- **Floating times**, with a configured zone other than UTC: bound to it, as busy time reads
  them (`compat_floating`).
- **A midnight RECURRENCE-ID on an all-day series** (Exchange's): written as the date, as busy
  time reads it (`availability.rid_forms`).
- **Two overrides of one occurrence**: only the one busy time keeps (`compat_overrides`).
- **Windows zone names without a VTIMEZONE** ("Eastern Standard Time"): vobject knows no such
  zone, so Radicale reads the time as floating and refuses to write the object out
  ("VTIMEZONE components must contain a valid TZID"). The name becomes the IANA zone CLDR
  maps it to, which is how busy time reads it too; so does an IANA name behind a vendor prefix
  (Evolution's `/freeassociation.sourceforge.net/Tzfile/Europe/Berlin`) with no VTIMEZONE.

Every VEVENT of a copy carries `X-CALMIRROR-COMPATIBLE-COPY:<reasons>` and the VCALENDAR
`X-CALMIRROR-COPY-OF:<remote href>`. Privacy (busy-only) and the mirror marker are applied
afterwards, to the copy, exactly as to an exact copy (`transform.mirror_copy`).

The resource is changed line by line (`ical_lines`); bounding rules is `compat_bounds`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from calmirror.availability import zones
from calmirror.availability.rid_forms import MIDNIGHT_RIDS, midnight_rids_as_dates
from calmirror.compat_bounds import bound_rules, over_limit
from calmirror.compat_dates import (
    BACKWARDS,
    DATES_AS_TIMES,
    ENDED_RULES,
    TRIMMED_TZIDS,
    backwards_spans,
    dates_as_times,
    rules_ending_before_start,
    trim_tzids,
)
from calmirror.compat_floating import bind_floating, binds, bound_to
from calmirror.compat_overrides import ONE_OVERRIDE_EACH, PLAIN_OVERRIDES, one_override_each, plain_overrides
from calmirror.compat_rdates import RDATE_ROOM, rules_as_rdates
from calmirror.compat_scales import GREGORIAN_SCALE, OTHER_SCALE, drop_other_scales, plain_gregorian_rules
from calmirror.compat_series import (
    COUNT_AS_UNTIL,
    DATE_UNTIL,
    EXRULES,
    OVERRIDDEN_EXDATES,
    START_AS_RDATE,
    THIS_AND_FUTURE,
    count_as_until,
    drop_exrules,
    keep_overrides,
    start_as_rdate,
    this_and_future,
    until_as_end_of_day,
)
from calmirror.compat_zones import EMPTY_ZONES, TZID_PARAMETERS, drop_empty_zones, plain_tzid_properties
from calmirror.ical_lines import TZID_PARAM, Event, Resource, escape, name_of, params_of, split, unfold, value_of
from calmirror.raw_text import as_windows_1252, has_raw_bytes

log = logging.getLogger("calmirror.mirror")

COMPAT_MARKER = "X-CALMIRROR-COMPATIBLE-COPY"
COPY_OF = "X-CALMIRROR-COPY-OF"
HORIZON_YEARS = 6  # January 1st this many years on: five to six years ahead
THIS_AND_FUTURE_ROOM = 2_500  # overrides written for one RANGE=THISANDFUTURE (daily to the horizon)

MASTERLESS = "overrides without a master: master added"
PERIODS = "RDATE periods as overrides"
BOUNDED = "rule bounded by UNTIL"
ZONES = "custom time zones renamed per definition"
NAMED = "undefined Windows or vendor-prefixed time zones named by their IANA zone"
BOTH_ENDS = "DURATION beside DTEND dropped"
OPENED = "end past the horizon dropped"
WRITTEN_OUT = "rule too frequent for Radicale's occurrence limit written out as RDATEs"
CUT = "rule cut at Radicale's occurrence limit before its end: clients see fewer occurrences than busy time counts"
BOM = "byte-order mark dropped"
RAW_BYTES = "bytes that are not UTF-8 read as Windows-1252 (or as the UTF-8 a fold had cut)"
UNCARRIED = "characters XML cannot carry (NUL, other C0 controls) dropped"

_UNCARRIED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TZID_LINE = re.compile(r"^TZID:(.*?)\r?$", re.MULTILINE)


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


def has_unstorable_text(text: str) -> bool:
    """Cheap first look: bytes that are not UTF-8 (`raw_text`), or characters no XML answer
    to a client can carry (NUL and the other C0 controls but tab and line breaks)."""
    return has_raw_bytes(text) or _UNCARRIED.search(text) is not None


def has_custom_zones(text: str) -> bool:
    """Cheap first look (a regex over the text): whether a VTIMEZONE names a zone that is not
    IANA's. Apple's own events never do, so 10,000 of them cost almost nothing here."""
    return any(zones.is_custom(name.strip()) for name in _TZID_LINE.findall(text))


def has_undefined_windows_zones(text: str) -> bool:
    """Cheap first look: whether a property names a Windows zone ("Eastern Standard Time")
    that no VTIMEZONE of the object defines. Radicale cannot place such a time (its time-range
    queries read it as floating) and refuses to write such an object out."""
    used = {match.group(2).strip('"').strip() for match in TZID_PARAM.finditer(text)}
    if not used:
        return False
    defined = {name.strip() for name in _TZID_LINE.findall(text)}
    return any(name not in defined and _placed_name(name) for name in used)


def compatible_copy(
    text: str, href: str, horizon: dt.date, max_occurrences: int, *, refused: str = "", floating_zone: str = ""
) -> Compatible | None:
    """The compatible copy of one object, or None when nothing in it needs changing (or it
    cannot be read well enough to change). `refused` is Radicale's reason for refusing the
    exact text, when known: a bounded UNTIL is used only when the rule was the trouble.
    `floating_zone`: the configured zone, which busy time reads floating times in."""
    marked = text.startswith("\ufeff")  # a byte-order mark some exporters write: Radicale refuses it
    already = [BOM] if marked else []
    if has_raw_bytes(text):  # Radicale keeps UTF-8 only; iCloud's exact text keeps the bytes
        text = as_windows_1252(unfold(text))  # (unfolded first: a fold may cut a UTF-8 sequence)
        already = [*already, RAW_BYTES]
    if _UNCARRIED.search(text):  # a client's XML answer could not carry them
        text, already = _UNCARRIED.sub("", text), [*already, UNCARRIED]
    try:
        resource = Resource.parse(text.removeprefix("\ufeff"))
    except ValueError:
        return None
    try:
        return _made(resource, href, horizon, max_occurrences, refused, tuple(already), floating_zone)
    except Exception:  # one object iCloud holds must never stop its calendar's pass
        # (a YEARLY rule "forever" once raised OverflowError here, and every pass of its
        # calendar failed). Without a copy the exact text is offered; if Radicale refuses it,
        # the object is withheld and its busy time still counts.
        log.warning("no compatible copy of %s: making it failed", href, exc_info=True)
        return None


def _made(
    resource: Resource,
    href: str,
    horizon: dt.date,
    max_occurrences: int,
    refused: str,
    already: tuple[str, ...],
    floating_zone: str = "",
) -> Compatible | None:
    reasons: list[str] = list(already)
    reasons += [reason for rewrite, reason in _BEFORE_SPREAD if rewrite(resource)]
    if binds(floating_zone) and bind_floating(resource, floating_zone):  # before the spread copies them
        reasons.append(bound_to(floating_zone))
    spread = this_and_future(resource, horizon, THIS_AND_FUTURE_ROOM)
    if spread:
        reasons.append(f"{THIS_AND_FUTURE} (horizon {horizon.isoformat()})")
    reasons += [reason for rewrite, reason in _AFTER_SPREAD if rewrite(resource)]
    wants_bound = (
        not refused
        or "recurrence" in refused.lower()
        or "rrule" in refused.lower()
        or over_limit(resource, max_occurrences)
    )
    if wants_bound:
        written, cut = rules_as_rdates(resource, horizon, max_occurrences)
        reasons += [WRITTEN_OUT] if written else []
        if cut:
            reasons.append(CUT)
            log.warning("%s: a rule has more than %d occurrences before its end; %s", href, RDATE_ROOM, CUT)
    rules_before = _rules(resource)
    bounded = horizon.isoformat() if spread else ""
    if wants_bound and bound_rules(resource, horizon, max_occurrences):
        changed = [rule for key, rule in _rules(resource).items() if rule != rules_before.get(key)]
        if any(_ends(rule) for rule in changed):
            reasons.append(f"{BOUNDED} (horizon {horizon.isoformat()})")
            bounded = horizon.isoformat()
        if any(not _ends(rule) for rule in changed):
            reasons.append(f"{OPENED} (horizon {horizon.isoformat()})")
            bounded = horizon.isoformat()
    if not reasons:
        return None
    mark(resource, ", ".join(reasons), href)
    return Compatible(resource.render(), tuple(reasons), bounded)


def _rules(resource: Resource) -> dict[tuple[int, int], str]:
    """Each RRULE's value by (event, line) position."""
    return {
        (n, index): value_of(line)
        for n, event in enumerate(resource.events)
        for index, line in event.top()
        if name_of(line) == "RRULE"
    }


def _ends(rule: str) -> bool:
    return any(p.partition("=")[0].strip().upper() in ("COUNT", "UNTIL") for p in rule.split(";"))


# --- the fixes ---------------------------------------------------------------------------


def rename_custom_zones(resource: Resource) -> bool:
    renames: dict[str, str] = {}
    for block in resource.timezones:
        tzid_line = next((line for line in block if name_of(line) == "TZID"), None)
        if tzid_line is None:
            continue
        tzid = value_of(tzid_line).strip()
        if zones.is_custom(tzid):
            renames[tzid] = f"{tzid} {zones.definition_digest(chr(10).join(block))}"
    if not renames:
        return False
    for block in resource.timezones:
        for index, line in enumerate(block):
            if name_of(line) == "TZID" and value_of(line).strip() in renames:
                block[index] = "TZID:" + renames[value_of(line).strip()]
    for event in resource.events:
        event.lines = [_renameparams_of(line, renames) for line in event.lines]
    return True


def name_undefined_zones(resource: Resource) -> bool:
    """A Windows zone name ("Eastern Standard Time") with no VTIMEZONE in the object becomes
    the IANA zone CLDR maps it to, as busy time reads it (`zones.zone_for`). Radicale's vobject
    knows no such name: when it has to write the object out it adds an empty VTIMEZONE for
    it and refuses the result ("VTIMEZONE components must contain a valid TZID")."""
    defined = {value_of(line).strip() for block in resource.timezones for line in block if name_of(line) == "TZID"}
    renames: dict[str, str] = {}
    for event in resource.events:
        for line in event.lines:
            for match in TZID_PARAM.finditer(split(line)[0]):
                name = match.group(2).strip('"')
                mapped = None if name in defined else _placed_name(name)
                if mapped is not None:
                    renames[name] = mapped
    if not renames:
        return False
    for event in resource.events:
        event.lines = [_renameparams_of(line, renames) for line in event.lines]
    return True


def _placed_name(name: str) -> str | None:
    """The zone name vobject can place for a TZID no VTIMEZONE defines, when it is not that
    name itself: a Windows name's IANA zone, or the IANA name inside a vendor prefix
    (`/freeassociation.sourceforge.net/Tzfile/Europe/Berlin`, as busy time reads it)."""
    iana = zones.iana_name(name)
    if iana is not None:
        return iana if iana != name else None
    return zones.windows_name(name)


def _renameparams_of(line: str, renames: dict[str, str]) -> str:
    head, value = split(line)

    def swap(match: re.Match[str]) -> str:
        raw = match.group(2)
        name = raw.strip('"')
        if name not in renames:
            return match.group(0)
        new = renames[name]
        return match.group(1) + (f'"{new}"' if raw.startswith('"') else new)

    return TZID_PARAM.sub(swap, head) + ":" + value


def drop_duration_beside_dtend(resource: Resource) -> bool:
    """An event may give DTEND or DURATION, not both (RFC 5545); Radicale refuses one that
    gives both. Busy time reads its DTEND (as recurring-ical-events does), so the copy keeps
    that one."""
    changed = False
    for event in resource.events:
        if event.get("DTEND") is not None and event.get("DURATION") is not None:
            drop = {index for index, line in event.top() if name_of(line) == "DURATION"}
            event.lines = [line for index, line in enumerate(event.lines) if index not in drop]
            changed = True
    return changed


def add_missing_master(resource: Resource) -> bool:
    overrides = [event for event in resource.events if event.get("RECURRENCE-ID")]
    if not overrides or len(overrides) != len(resource.events) or len(overrides) < 2:
        return False  # has a master, or one lone override (Radicale takes that as its own master)
    first = overrides[0]
    rid = first.get("RECURRENCE-ID") or ""
    master = list(first.without("RECURRENCE-ID", "DTSTART", "DTEND", "DURATION", "RANGE"))
    master.append("DTSTART" + params_of(rid).replace(";RANGE=THISANDFUTURE", "") + ":" + value_of(rid))
    for other in overrides[1:]:
        other_rid = other.get("RECURRENCE-ID") or ""
        master.append("RDATE" + params_of(other_rid).replace(";RANGE=THISANDFUTURE", "") + ":" + value_of(other_rid))
    # Every instance is overridden, so the master itself never shows; transparent all the
    # same, so nothing could count it twice.
    master = [line for line in master if name_of(line) != "TRANSP"] + ["TRANSP:TRANSPARENT"]
    resource.events.insert(0, Event(master))
    return True


def split_periods(resource: Resource) -> bool:
    changed = False
    for event in list(resource.events):
        periods = [line for line in event.all("RDATE") if "VALUE=PERIOD" in params_of(line).upper()]
        if not periods:
            continue
        changed = True
        overridden = {value_of(e.get("RECURRENCE-ID") or ":").strip() for e in resource.events}
        event.lines = [line for line in event.lines if line not in periods]
        base = event.without("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "EXRULE")
        for line in periods:
            params = re.sub(r";VALUE=PERIOD", "", params_of(line), flags=re.IGNORECASE)
            for period in value_of(line).split(","):
                start, _, end = period.strip().partition("/")
                event.lines.append(f"RDATE{params}:{start}")
                if start in overridden:
                    continue  # an override of that instance already says when it ends
                overridden.add(start)
                finish = f"DURATION:{end}" if end.upper().startswith(("P", "+P", "-P")) else f"DTEND{params}:{end}"
                resource.events.append(
                    Event([*base, f"RECURRENCE-ID{params}:{start}", f"DTSTART{params}:{start}", finish])
                )
    return changed


def mark(resource: Resource, reasons: str, href: str) -> None:
    resource.head = [line for line in resource.head if name_of(line) not in (COPY_OF,)] + [f"{COPY_OF}:{escape(href)}"]
    for event in resource.events:
        event.lines = [line for line in event.lines if name_of(line) != COMPAT_MARKER]
        event.lines.insert(0, f"{COMPAT_MARKER}:{escape(reasons)}")


#: The rewrites of a copy with the reason each gives, in the order they are made; a
#: THISANDFUTURE override is spread between the two groups (`_made`), and the rules are
#: bounded last.
_BEFORE_SPREAD: tuple[tuple[Callable[[Resource], bool], str], ...] = (
    (plain_gregorian_rules, GREGORIAN_SCALE),
    (trim_tzids, TRIMMED_TZIDS),
    (plain_tzid_properties, TZID_PARAMETERS),
    (drop_empty_zones, EMPTY_ZONES),
    (dates_as_times, DATES_AS_TIMES),
    (backwards_spans, BACKWARDS),
    (rules_ending_before_start, ENDED_RULES),
    (drop_other_scales, OTHER_SCALE),
    (rename_custom_zones, ZONES),
    (name_undefined_zones, NAMED),
    (drop_duration_beside_dtend, BOTH_ENDS),
    (until_as_end_of_day, DATE_UNTIL),
    (midnight_rids_as_dates, MIDNIGHT_RIDS),
    (one_override_each, ONE_OVERRIDE_EACH),
    (plain_overrides, PLAIN_OVERRIDES),
    (keep_overrides, OVERRIDDEN_EXDATES),
    (drop_exrules, EXRULES),
    (start_as_rdate, START_AS_RDATE),
    (count_as_until, COUNT_AS_UNTIL),
)
_AFTER_SPREAD: tuple[tuple[Callable[[Resource], bool], str], ...] = (
    (add_missing_master, MASTERLESS),
    (split_periods, PERIODS),
)
