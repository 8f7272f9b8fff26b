"""iCloud-like calendar objects for the busy-time differential tests, written twice.

Each generated `Obj` is written as iCloud would hold it (Apple's VTIMEZONE blocks, Outlook's
Windows zone names, "Customized Time Zone" defined differently per object, UTC `Z` times,
floating and all-day values) and as a canonical text for the oracle (`busy_oracle`) in which
every TZID is the IANA zone the generator meant and no VTIMEZONE appears. Three readings are
the oracle's own, written into the canonical text rather than left to the library: a DATE
UNTIL on a timed rule ends after that whole day (in the event's zone), an override of an
occurrence an EXDATE removes is still an occurrence, and a DTSTART the rule does not produce
counts toward its COUNT (RFC 5545; the library adds it on top).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import strategies as st

from calmirror.testing import ical

UTC = dt.UTC
ME = "me@example.com"  # the test account's Apple ID (calmirror.testing.APPLE_ID)
ALIAS = "me.alias@example.org"  # configured in [availability] aliases
CUSTOM = "Customized Time Zone"
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

#: Custom definitions under one TZID name, and the IANA zone each spells out (2025-2030).
CUSTOM_DEFS: dict[str, list[str]] = {
    "America/New_York": ical.vtimezone(
        CUSTOM,
        standard=("Standard", "-0500", "16010101T020000", "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"),
        daylight=("Daylight", "-0400", "16010101T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"),
    ),
    "Europe/Berlin": ical.vtimezone(
        CUSTOM,
        standard=("Standard", "+0100", "16010101T030000", "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"),
        daylight=("Daylight", "+0200", "16010101T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
    ),
    "Asia/Kolkata": [
        "BEGIN:VTIMEZONE",
        f"TZID:{CUSTOM}",
        "BEGIN:STANDARD",
        "DTSTART:16010101T000000",
        "TZOFFSETFROM:+0530",
        "TZOFFSETTO:+0530",
        "TZNAME:India Standard Time",
        "END:STANDARD",
        "END:VTIMEZONE",
    ],
}
WINDOWS = {"W. Europe Standard Time": "Europe/Berlin", "Eastern Standard Time": "America/New_York"}
#: Start days are drawn around these, so most objects touch the test's windows.
ANCHORS = (
    dt.datetime(2026, 12, 10),
    dt.datetime(2027, 3, 20),  # both spring DST changes within reach
    dt.datetime(2026, 10, 28),  # both autumn ones (the clocks go back on 25 October and 1 November)
    dt.datetime(2025, 12, 5),
    dt.datetime(2028, 12, 10),
)
IANA = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")


@dataclass(frozen=True)
class Props:
    transp: str | None = None
    status: str | None = None
    cdo: str | None = None  # X-MICROSOFT-CDO-BUSYSTATUS
    partstat: str | None = None  # the user's; None: not invited
    address: str = "mailto"  # how the user's ATTENDEE line names them
    travel: int = 0  # minutes of X-APPLE-TRAVEL-DURATION


@dataclass(frozen=True)
class Override:
    index: int  # which occurrence (0-based, of the rule's own list)
    move: int  # minutes (timed) or days (all-day)
    props: Props


@dataclass(frozen=True)
class Obj:
    uid: str
    form: str  # utc | iana | windows | custom | floating | date
    zone: str  # the IANA zone meant ("" for utc, floating and date)
    start: dt.datetime  # wall time (midnight for date)
    length: dt.timedelta
    end_form: str  # dtend | duration | duration-exact (days written as hours: PT24H) | none
    rule: str  # RRULE without COUNT/UNTIL, or ""
    ending: tuple[str, int]  # ("count", n) | ("until" | "until-date", days) | ("open", 0) | ("forever", 0)
    props: Props
    master: bool = True
    exdates: tuple[tuple[int, str], ...] = ()  # (occurrence index, "zone" | "utc")
    rdates: tuple[tuple[int, int, bool], ...] = ()  # (days after start, hour, as PERIOD)
    overrides: tuple[Override, ...] = field(default=())


# --- generating --------------------------------------------------------------------------------


def props() -> st.SearchStrategy[Props]:
    """Mostly plain busy events (so windows have busy time to lose), each rule now and then."""
    rare = st.one_of
    return st.builds(
        Props,
        transp=rare(st.just(None), st.sampled_from(["OPAQUE", "TRANSPARENT"])),
        status=rare(st.just(None), st.just(None), st.sampled_from(["CONFIRMED", "TENTATIVE", "CANCELLED"])),
        cdo=rare(st.just(None), st.just(None), st.sampled_from(["BUSY", "FREE", "TENTATIVE", "OOF"])),
        partstat=rare(st.just(None), st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION"])),
        address=st.sampled_from(["mailto", "upper", "alias", "email-param"]),
        travel=rare(st.just(0), st.just(0), st.sampled_from([15, 60])),
    )


@st.composite
def objects(draw: st.DrawFn, uid: str) -> Obj:
    form = draw(st.sampled_from(["utc", "iana", "iana", "windows", "custom", "custom", "floating", "date"]))
    zone = {
        "iana": draw(st.sampled_from(IANA)),
        "windows": draw(st.sampled_from(sorted(WINDOWS.values()))),
        "custom": draw(st.sampled_from(sorted(CUSTOM_DEFS))),
    }.get(form, "")
    anchor = draw(st.sampled_from(ANCHORS))
    day = anchor + dt.timedelta(days=draw(st.integers(-40, 40)))
    if form == "date":
        start, length = day, dt.timedelta(days=draw(st.integers(1, 3)))
    else:
        start = day + dt.timedelta(hours=draw(st.integers(0, 23)), minutes=draw(st.sampled_from([0, 15, 30, 45])))
        length = dt.timedelta(minutes=draw(st.sampled_from([15, 30, 60, 90, 180, 1440, 1560])))
    kind = draw(
        st.sampled_from(
            ["none", "none", "daily", "weekly", "monthly", "setpos", "nth", "lastday", "yearly", "yearly-day", "hourly"]
        )
    )
    interval = draw(st.sampled_from([1, 1, 2, 3]))
    rule = ""
    if kind == "daily":
        rule = f"FREQ=DAILY;INTERVAL={interval}"
    elif kind == "weekly":  # Apple writes WKST=SU, which decides the weeks of an INTERVAL
        days = draw(st.sets(st.sampled_from(WEEKDAYS), max_size=3)) | {WEEKDAYS[start.weekday()]}
        wkst = draw(st.sampled_from(["", ";WKST=SU", ";WKST=MO"]))
        rule = f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={','.join(sorted(days, key=WEEKDAYS.index))}{wkst}"
    elif kind == "monthly":
        rule = f"FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={start.day}"
    elif kind == "setpos":
        rule = f"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS={draw(st.sampled_from([1, -1]))}"
    elif kind == "nth":
        rule = f"FREQ=MONTHLY;INTERVAL={interval};BYDAY={(start.day - 1) // 7 + 1}{WEEKDAYS[start.weekday()]}"
    elif kind == "lastday":
        rule = "FREQ=MONTHLY;BYMONTHDAY=-1"
    elif kind == "yearly":
        rule = "FREQ=YEARLY"
    elif kind == "hourly":  # filtered sub-daily rules (drawn again: the index keeps dense ones merged)
        hours = sorted(draw(st.sets(st.integers(0, 23), min_size=1, max_size=4)) | {start.hour})
        days = draw(st.sampled_from(["", ";BYDAY=MO,WE,FR", ";BYDAY=SA,SU"]))
        # (at most a few hundred a month: a denser rule is walked only up to a cap, and the rest
        # of the window is counted busy as one approximate stretch, by design)
        freq, every = draw(
            st.sampled_from([("HOURLY", 1), ("HOURLY", 5), ("HOURLY", 7), ("MINUTELY", 20), ("MINUTELY", 90)])
        )
        rule = f"FREQ={freq};INTERVAL={every}"
        rule += f";BYHOUR={','.join(map(str, hours))}{days}"
    elif kind == "yearly-day":
        rule = f"FREQ=YEARLY;BYMONTH={start.month};BYDAY=-1{WEEKDAYS[start.weekday()]}"
    ending: tuple[str, int] = ("open", 0)
    if rule:
        ending = draw(
            st.one_of(
                st.tuples(st.just("count"), st.integers(1, 40)),
                st.tuples(st.just("count"), st.integers(200, 1500)),
                st.tuples(st.just("until"), st.integers(0, 900)),
                st.tuples(st.just("until-date"), st.integers(0, 120)),  # UNTIL=YYYYMMDD, timed or not
                st.just(("open", 0)),
                st.just(("forever", 0)),
            )
        )
    timed = form != "date"
    n = 8
    overrides = (
        draw(
            st.lists(
                st.builds(
                    Override,
                    index=st.integers(0, n - 1),
                    move=st.integers(-2, 2) if not timed else st.sampled_from([0, -90, 60, 300, 1440]),
                    props=props(),
                ),
                max_size=2,
                unique_by=lambda o: o.index,
            )
        )
        if rule
        else []
    )
    return Obj(
        uid=uid,
        form=form,
        zone=zone,
        start=start,
        length=length,
        end_form=draw(
            st.sampled_from(["dtend", "dtend", "dtend", "duration", "duration", "none"])
            if form == "date"
            else st.sampled_from(["dtend", "dtend", "dtend", "duration", "duration", "duration-exact", "none"])
        ),
        rule=rule,
        ending=ending,
        props=draw(props()),
        master=draw(st.sampled_from([True, True, True, False])) if overrides else True,
        exdates=tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(0, n - 1), st.sampled_from(["zone", "utc"])),
                    max_size=2,
                    unique_by=lambda e: e[0],
                )
            )
        )
        if rule
        else (),
        rdates=tuple(
            draw(
                st.lists(st.tuples(st.integers(1, 90), st.integers(6, 20), st.booleans()), max_size=2)
                if rule
                else st.just([])
            )
        ),
        overrides=tuple(o for o in overrides if o.index < len(rule_walls(rule, start, ending, 10))),
    )


def rule_walls(rule: str, start: dt.datetime, ending: tuple[str, int], limit: int) -> list[dt.datetime]:
    """The first `limit` wall times of the rule, as its COUNT or UNTIL leaves them: DTSTART
    first and counted toward COUNT also where the rule's filters would not produce it (RFC
    5545 3.3.10; dateutil would add it on top)."""
    walls = [start]
    for wall in rrulestr(rule, dtstart=start):
        if len(walls) >= limit or (ending[0] == "count" and len(walls) >= ending[1]):
            break
        if wall == start:
            continue
        if ending[0] == "until" and wall > start + dt.timedelta(days=ending[1]):
            break
        if ending[0] == "until-date" and wall.date() > (start + dt.timedelta(days=ending[1])).date():
            break  # a DATE UNTIL: the whole last day counts (see `write`)
        walls.append(wall)
    return walls[:limit]


def start_off_rule(rule: str, start: dt.datetime) -> bool:
    """Whether the rule's own walk from DTSTART does not produce DTSTART."""
    return next(iter(rrulestr(rule, dtstart=start)), None) != start


# --- writing ----------------------------------------------------------------------------------------


def _value(obj: Obj, wall: dt.datetime, canonical: bool, name: str, utc: bool = False) -> str:
    if obj.form == "date":
        return f"{name};VALUE=DATE:{wall:%Y%m%d}"
    if obj.form == "floating":
        return f"{name}:{wall:%Y%m%dT%H%M%S}"
    if obj.form == "utc" or utc:
        at = wall if obj.form == "utc" else wall.replace(tzinfo=ZoneInfo(obj.zone)).astimezone(UTC)
        return f"{name}:{at:%Y%m%dT%H%M%S}Z"
    tzid = obj.zone
    if not canonical and obj.form == "windows":
        tzid = next(w for w, z in WINDOWS.items() if z == obj.zone)
    elif not canonical and obj.form == "custom":
        tzid = CUSTOM
    return f'{name};TZID="{tzid}":{wall:%Y%m%dT%H%M%S}' if " " in tzid else f"{name};TZID={tzid}:{wall:%Y%m%dT%H%M%S}"


def _duration(length: dt.timedelta) -> str:
    if length.seconds == 0:
        return f"P{length.days}D"
    return f"PT{int(length.total_seconds()) // 60}M"


def _prop_lines(p: Props, uid: str, timed: bool) -> list[str]:
    lines = [f"SUMMARY:{uid}"]
    if p.transp:
        lines.append(f"TRANSP:{p.transp}")
    if p.status:
        lines.append(f"STATUS:{p.status}")
    if p.cdo:
        lines.append(f"X-MICROSOFT-CDO-BUSYSTATUS:{p.cdo}")
    if p.partstat:
        lines.append("ORGANIZER;CN=Boss:mailto:boss@example.net")
        lines.append("ATTENDEE;CN=Boss;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:boss@example.net")
        lines.append("ATTENDEE;CN=Other;PARTSTAT=DECLINED:mailto:other@example.net")
        who = {
            "mailto": f"PARTSTAT={p.partstat}:mailto:{ME}",
            "upper": f"PARTSTAT={p.partstat}:MAILTO:{ME.upper()}",
            "alias": f"PARTSTAT={p.partstat}:mailto:{ALIAS}",
            "email-param": f"EMAIL={ME};PARTSTAT={p.partstat}:urn:uuid:9f1c2d3e-0000-4000-8000-00000000abcd",
        }[p.address]
        lines.append(f"ATTENDEE;CN=Me;CUTYPE=INDIVIDUAL;{who}")
    if p.travel:
        lines.append(f"X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT{p.travel}M")
    return lines


def _vevent(
    obj: Obj, canonical: bool, start: dt.datetime, length: dt.timedelta, p: Props, head: list[str]
) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{obj.uid}",
        "DTSTAMP:20261101T120000Z",
        *head,
        _value(obj, start, canonical, "DTSTART"),
    ]
    if obj.end_form == "dtend":
        lines.append(_value(obj, start + length, canonical, "DTEND"))
    elif obj.end_form == "duration":
        lines.append(f"DURATION:{_duration(length)}")
    elif obj.end_form == "duration-exact":  # RFC 5545 3.3.6: exact, where P1D is nominal
        lines.append(f"DURATION:PT{int(length.total_seconds()) // 3600}H{int(length.total_seconds()) % 3600 // 60}M")
    lines += _prop_lines(p, obj.uid, obj.form != "date")
    return [*lines, "END:VEVENT"]


def write(obj: Obj, canonical: bool) -> str:
    """The object as iCloud holds it (`canonical=False`) or as the oracle reads it."""
    vevents: list[str] = []
    if obj.master:
        head: list[str] = []
        if obj.rule:
            rule = obj.rule
            if obj.ending[0] == "count" and canonical and start_off_rule(obj.rule, obj.start):
                # DTSTART off the rule counts toward COUNT (RFC 5545); the library would add it
                # on top, so the oracle's text ends at the last counted occurrence instead.
                last = rule_walls(obj.rule, obj.start, obj.ending, obj.ending[1])[-1]
                unt = _value(obj, last, canonical, "X", utc=obj.form not in ("floating", "date"))
                rule += ";UNTIL=" + unt.split(":", 1)[1]
            elif obj.ending[0] == "count":
                rule += f";COUNT={obj.ending[1]}"
            elif obj.ending[0] == "forever":
                rule += ";COUNT=1000000000"
            elif obj.ending[0] == "until":
                until = obj.start + dt.timedelta(days=obj.ending[1])
                unt = _value(obj, until, canonical, "X", utc=obj.form not in ("floating", "date"))
                rule += ";UNTIL=" + unt.split(":", 1)[1]
            elif obj.ending[0] == "until-date":
                # iCloud holds what clients write: a DATE UNTIL on timed occurrences too (RFC
                # 5545 calls it invalid). Busy time counts that whole last day, in the event's
                # zone: the oracle's text says so with the day's last second.
                day = (obj.start + dt.timedelta(days=obj.ending[1])).replace(hour=0, minute=0)
                if canonical and obj.form != "date":
                    last = day.replace(hour=23, minute=59, second=59)
                    rule += ";UNTIL=" + _value(obj, last, canonical, "X", utc=obj.form != "floating").split(":", 1)[1]
                else:
                    rule += f";UNTIL={day:%Y%m%d}"
            head.append(f"RRULE:{rule}")
        walls = rule_walls(obj.rule, obj.start, obj.ending, 10) if obj.rule else []
        overridden = {o.index for o in obj.overrides}
        for index, how in obj.exdates:
            # An override of an EXDATEd occurrence still counts (an event someone wrote after
            # the rule; erring towards busy): the oracle's text simply does not exclude it.
            if index < len(walls) and not (canonical and index in overridden):
                head.append(_value(obj, walls[index], canonical, "EXDATE", utc=how == "utc" and obj.form != "floating"))
        for days, hour, period in obj.rdates:
            at = (obj.start + dt.timedelta(days=days)).replace(hour=hour, minute=0)
            if obj.form == "date":
                head.append(_value(obj, at.replace(hour=0), canonical, "RDATE"))
            elif period:
                value = _value(obj, at, canonical, "RDATE;VALUE=PERIOD").split(":", 1)
                head.append(f"{value[0]}:{value[1]}/PT45M")
            else:
                head.append(_value(obj, at, canonical, "RDATE"))
        vevents += _vevent(obj, canonical, obj.start, obj.length, obj.props, head)
    walls = rule_walls(obj.rule, obj.start, obj.ending, 10) if obj.rule else []
    for o in obj.overrides:
        wall = walls[o.index]
        moved = wall + (dt.timedelta(days=o.move) if obj.form == "date" else dt.timedelta(minutes=o.move))
        rid = _value(obj, wall, canonical, "RECURRENCE-ID")
        vevents += _vevent(obj, canonical, moved, obj.length, o.props, [rid, "SEQUENCE:1"])
    zones: list[str] = []
    if not canonical:
        if obj.form == "iana" and obj.zone in ical.VTIMEZONES:
            zones = ical.VTIMEZONES[obj.zone]
        elif obj.form == "custom":
            zones = CUSTOM_DEFS[obj.zone]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{ical.APPLE_PRODID}", "CALSCALE:GREGORIAN", *zones, *vevents]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"
