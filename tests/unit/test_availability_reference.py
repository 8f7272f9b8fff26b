"""The engine against a deliberately naive reference expander, on generated iCloud shapes.

Generated objects carry rules with COUNT/UNTIL/BYDAY/BYMONTHDAY/INTERVAL, overrides with
and without their master, RDATE (date-times, dates, periods) and EXDATE (in the event's
zone, in UTC, as dates), custom zones sharing one TZID name with different definitions,
floating and all-day times, TRANSP and Apple's travel time. Several objects go into one
source, so two `Customized Time Zone` definitions meet in one query.

The reference knows nothing of recurring-ical-events or of the engine's shortcuts: it
expands each rule with dateutil from DTSTART over the whole window by brute force, applies
RFC 5545 by hand (EXDATE by instant, RECURRENCE-ID replacement, PERIOD lengths) and reads
each zone from what the generator meant by it (the custom definitions are built here as
the zones they describe, not parsed from the VTIMEZONE text).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.availability import engine as av
from calmirror.availability.intervals import merge
from calmirror.testing import ical

UTC = dt.UTC
WINDOW = (dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2027, 5, 1, tzinfo=UTC))
CUSTOM = "Customized Time Zone"

# form -> (TZID written, VTIMEZONE lines, the zone the reference uses; None: floating/date)
PLUS3 = ical.vtimezone(
    CUSTOM,
    standard=("Standard", "+0300", "16010101T000000", "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"),
    daylight=("Daylight", "+0300", "16010101T000000", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
)
US_EAST = ical.vtimezone(
    CUSTOM,
    standard=("Standard", "-0500", "16010101T020000", "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"),
    daylight=("Daylight", "-0400", "16010101T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"),
)
FORMS: dict[str, tuple[str | None, list[str], dt.tzinfo | None]] = {
    "utc": ("UTC", [], UTC),
    "berlin": ("Europe/Berlin", ical.VTIMEZONES["Europe/Berlin"], ZoneInfo("Europe/Berlin")),
    "custom-plus3": (CUSTOM, PLUS3, dt.timezone(dt.timedelta(hours=3))),
    "custom-us-east": (CUSTOM, US_EAST, ZoneInfo("America/New_York")),  # the rules it spells out
    "windows": ("W. Europe Standard Time", [], ZoneInfo("Europe/Berlin")),  # CLDR, no VTIMEZONE
    "floating": (None, [], None),
    "date": (None, [], None),
}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Obj:
    uid: str
    form: str
    start: dt.datetime  # naive wall time (midnight for "date")
    length: dt.timedelta
    rule: str  # "" or an RRULE value without UNTIL/COUNT
    count: int | None
    until_days: int | None  # UNTIL this many days after DTSTART, at DTSTART's time
    master: bool
    transparent: bool
    travel: int  # minutes
    overrides: tuple[tuple[int, int, bool, int], ...]  # (occurrence index, move minutes/days, transparent, travel)
    exdates: tuple[tuple[int, str], ...]  # (occurrence index, "zone" | "utc" | "date")
    rdates: tuple[tuple[int, int, str], ...]  # (days after DTSTART, hours, "plain" | "period")


@st.composite
def objects(draw: st.DrawFn, uid: str) -> Obj:
    form = draw(st.sampled_from(list(FORMS)))
    day = dt.datetime(2026, 10, 20) + dt.timedelta(days=draw(st.integers(0, 150)))
    if form == "date":
        start, length = day, dt.timedelta(days=draw(st.integers(1, 2)))
    else:  # 08:00-19:45: far from every DST change (those happen at 02:00-03:00)
        start = day + dt.timedelta(hours=draw(st.integers(8, 19)), minutes=15 * draw(st.integers(0, 3)))
        length = dt.timedelta(minutes=15 * draw(st.integers(1, 12)))
    kind = draw(st.sampled_from(["none", "daily", "weekly", "monthly"]))
    interval = draw(st.integers(1, 3))
    rule = ""
    if kind == "daily":
        rule = f"FREQ=DAILY;INTERVAL={interval}"
    elif kind == "weekly":
        days = draw(st.sets(st.sampled_from(WEEKDAYS), max_size=3)) | {WEEKDAYS[start.weekday()]}
        rule = f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={','.join(sorted(days, key=WEEKDAYS.index))}"
    elif kind == "monthly":
        start = start.replace(day=min(start.day, 28))
        days_of_month = draw(st.sets(st.integers(1, 28), max_size=2)) | {start.day}
        rule = f"FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={','.join(map(str, sorted(days_of_month)))}"
    end_kind = draw(st.sampled_from(["count", "until", "none"])) if rule else "none"
    count = draw(st.integers(1, 12)) if end_kind == "count" else None
    until_days = draw(st.integers(0, 120)) if end_kind == "until" else None
    n = 12
    timed = form != "date"
    return Obj(
        uid=uid,
        form=form,
        start=start,
        length=length,
        rule=rule,
        count=count,
        until_days=until_days,
        master=draw(st.booleans()) if rule else True,
        transparent=draw(st.sampled_from([False, False, False, True])),
        travel=draw(st.sampled_from([0, 0, 15, 45])) if timed else 0,
        overrides=tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(0, n - 1),
                        st.integers(-2, 2) if not timed else st.integers(-300, 300).map(lambda m: m // 15 * 15),
                        st.booleans(),
                        st.sampled_from([0, 30]) if timed else st.just(0),
                    ),
                    max_size=2,
                    unique_by=lambda o: o[0],
                )
            )
        )
        if rule
        else (),
        exdates=tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(0, n - 1), st.sampled_from(["zone", "utc"] if timed else ["date"])),
                    max_size=2,
                    unique_by=lambda e: e[0],
                )
            )
        )
        if rule
        else (),
        rdates=tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(1, 60), st.integers(-3, 3), st.sampled_from(["plain", "period"])),
                    max_size=2,
                    unique_by=lambda r: r[0],
                )
            )
        ),
    )


# --- writing the object -----------------------------------------------------------------------------


def _zone(form: str) -> dt.tzinfo | None:
    return FORMS[form][2]


def _value(obj: Obj, wall: dt.datetime, name: str, *, as_utc: bool = False) -> str:
    tzid = FORMS[obj.form][0]
    if obj.form == "date":
        return name + ical.stamp(wall.date(), None)
    if as_utc and tzid is not None:
        zone = _zone(obj.form)
        return name + ical.stamp(wall.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None), "UTC")
    return name + ical.stamp(wall, tzid)


def _rule_walls(obj: Obj) -> list[dt.datetime]:
    """The rule's occurrence starts (wall times), brute force from DTSTART to past the window."""
    if not obj.rule:
        return [obj.start]
    text = obj.rule + (f";COUNT={obj.count}" if obj.count else "")
    walls = list(rrulestr(text, dtstart=obj.start).between(obj.start, dt.datetime(2027, 6, 1), inc=True))
    if obj.until_days is not None:
        until = obj.start + dt.timedelta(days=obj.until_days)
        walls = [w for w in walls if w <= until]
    return walls


def _until(obj: Obj) -> str:
    until = obj.start + dt.timedelta(days=obj.until_days or 0)
    if obj.form == "date":
        return f"{until:%Y%m%d}"
    if obj.form == "floating":
        return f"{until:%Y%m%dT%H%M%S}"
    return f"{until.replace(tzinfo=_zone(obj.form)).astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _move(obj: Obj, minutes_or_days: int) -> dt.timedelta:
    return dt.timedelta(days=minutes_or_days) if obj.form == "date" else dt.timedelta(minutes=minutes_or_days)


def _rdate_wall(obj: Obj, days: int, hours: int) -> dt.datetime:
    return obj.start + dt.timedelta(days=days, hours=0 if obj.form == "date" else hours)


def vevents(obj: Obj) -> list[list[str]]:
    walls = _rule_walls(obj)
    out: list[list[str]] = []
    if obj.master:
        lines = [f"UID:{obj.uid}", "DTSTAMP:20261001T000000Z", _value(obj, obj.start, "DTSTART")]
        lines.append(_value(obj, obj.start + obj.length, "DTEND"))
        if obj.rule:
            end = (
                f";COUNT={obj.count}" if obj.count else (f";UNTIL={_until(obj)}" if obj.until_days is not None else "")
            )
            lines.append(f"RRULE:{obj.rule}{end}")
        for index, form in obj.exdates:
            if index < len(walls):
                lines.append(_value(obj, walls[index], "EXDATE", as_utc=form == "utc"))
        for days, hours, form in obj.rdates:
            wall = _rdate_wall(obj, days, hours)
            if form == "period" and obj.form != "date":
                start = _value(obj, wall, "RDATE;VALUE=PERIOD")
                lines.append(f"{start}/PT{int(obj.length.total_seconds()) // 60 + 30}M")
            else:
                lines.append(_value(obj, wall, "RDATE"))
        if obj.transparent:
            lines.append("TRANSP:TRANSPARENT")
        if obj.travel:
            lines.append(f"X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT{obj.travel}M")
        out.append(lines)
    for index, move, transparent, travel in obj.overrides:
        if index >= len(walls):
            continue
        wall = walls[index]
        lines = [f"UID:{obj.uid}", "DTSTAMP:20261001T000000Z", _value(obj, wall, "RECURRENCE-ID")]
        lines.append(_value(obj, wall + _move(obj, move), "DTSTART"))
        lines.append(_value(obj, wall + _move(obj, move) + obj.length, "DTEND"))
        if transparent:
            lines.append("TRANSP:TRANSPARENT")
        if travel:
            lines.append(f"X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT{travel}M")
        out.append(lines)
    return out


def calendar_text(obj: Obj) -> str | None:
    events = vevents(obj)
    return ical.vcalendar(*events, head=FORMS[obj.form][1]) if events else None


# --- the naive reference ------------------------------------------------------------------------------


def _utc(obj: Obj, wall: dt.datetime, configured: dt.tzinfo) -> dt.datetime:
    zone = _zone(obj.form)
    return wall.replace(tzinfo=zone or configured).astimezone(UTC)


def reference(obj: Obj, configured: dt.tzinfo, travel_time: bool) -> list[tuple[dt.datetime, dt.datetime]]:
    walls = _rule_walls(obj)
    # (wall start, wall end, transparent, travel minutes), keyed by the instant it stands for
    found: dict[dt.datetime, tuple[dt.datetime, dt.datetime, bool, int]] = {}
    if obj.master:
        for wall in walls:
            found[_utc(obj, wall, configured)] = (wall, wall + obj.length, obj.transparent, obj.travel)
        for days, hours, form in obj.rdates:
            wall = _rdate_wall(obj, days, hours)
            extra = dt.timedelta(minutes=30) if form == "period" and obj.form != "date" else dt.timedelta(0)
            found[_utc(obj, wall, configured)] = (wall, wall + obj.length + extra, obj.transparent, obj.travel)
        for index, _form in obj.exdates:
            if index < len(walls):
                found.pop(_utc(obj, walls[index], configured), None)
    for index, move, transparent, travel in obj.overrides:
        if index >= len(walls):
            continue
        wall = walls[index] + _move(obj, move)
        key = _utc(obj, walls[index], configured)
        if obj.master and key not in found:
            continue  # an override of an excluded occurrence: RFC 5545 leaves it to the client; skip
        found[key] = (wall, wall + obj.length, transparent, travel)
    out = []
    for start, end, transparent, travel in found.values():
        if transparent:
            continue
        a, b = _utc(obj, start, configured), _utc(obj, end, configured)
        if travel_time and obj.form != "date" and a < b:
            a -= dt.timedelta(minutes=travel)
        out.append((a, b))
    return out


def _excluded_then_overridden(obj: Obj) -> bool:
    excluded = {i for i, _ in obj.exdates}
    return obj.master and any(i in excluded for i, *_ in obj.overrides)


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(st.integers(0, 2**16), min_size=1, max_size=3).flatmap(
        lambda seeds: st.tuples(*(objects(f"obj-{n}@gen") for n in range(len(seeds))))
    ),
    st.sampled_from(["UTC", "Europe/Berlin"]),
    st.booleans(),
)
def test_engine_agrees_with_a_naive_reference(objs: tuple[Obj, ...], zone: str, travel_time: bool) -> None:
    configured = ZoneInfo(zone)
    objs = tuple(o for o in objs if not _excluded_then_overridden(o))
    texts = [t for t in (calendar_text(o) for o in objs) if t is not None]
    source = av.Source("gen", [av.parse_calendar(t) for t in texts])
    rules = av.Rules(configured, travel_time=travel_time)
    got = av.busy_intervals([source], *WINDOW, rules)
    ws, we = WINDOW
    expected = merge(
        (max(a, ws), min(b, we)) for o in objs for a, b in reference(o, configured, travel_time) if a < we and b > ws
    )
    assert got == expected
    assert av.skipped([source], *WINDOW, rules) == []
