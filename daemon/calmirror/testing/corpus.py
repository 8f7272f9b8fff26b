"""The benchmark corpus: deterministic, Apple-shaped iCloud resources in a promised mix.

Every benchmark compares calmirror with a peer on the *same* data, so the generator must give
byte-identical output for a seed; the tests pin that, and the emulator can seed from it.
Apple-shaped: PRODID, X-APPLE properties, VALARMs with X-WR-ALARMUID, full VTIMEZONE blocks,
lines folded at 75 octets, weekly series with their moved instances in the same resource.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from calmirror.testing.ical import APPLE_PRODID, stamp, vcalendar_lines, vtimezone_for

#: The middle of the generated data: serving and availability queries look around here.
ANCHOR = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# --- Apple-shaped data --------------------------------------------------------------------

_ZONES = ["Europe/Berlin", "America/New_York", "UTC"]
_ZONE_WEIGHTS = [60, 25, 15]
_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
_SUMMARIES = [
    "Team sync",
    "1:1 with Sam",
    "Design review",
    "Customer call",
    "Dentist",
    "Lunch with Alex",
    "Budget review",
    "Focus time",
    "Interview",
    "Sprint planning",
    "Yoga",
    "Parents' evening",
]
_PLACES = [
    ("Gärtnerstraße 12\\, 10245 Berlin", "geo:52.507,13.454"),
    ("1 Infinite Loop\\, Cupertino CA 95014", "geo:37.331,-122.030"),
    ("Alexanderplatz\\, 10178 Berlin", "geo:52.521,13.413"),
]


@dataclass(frozen=True)
class Mix:
    """How many resources of each kind a generated corpus holds, and how many VEVENTs in all."""

    single: int
    weekly: int
    allday: int
    vevents: int

    @property
    def total(self) -> int:
        return self.single + self.weekly + self.allday


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def _common(rng: random.Random, uid: str, summary: str, sequence: int) -> list[str]:
    created = ANCHOR - dt.timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86_399))
    modified = created + dt.timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86_399))
    lines = [
        f"CREATED:{created:%Y%m%dT%H%M%SZ}",
        f"UID:{uid}",
        f"SUMMARY:{summary}",
        f"LAST-MODIFIED:{modified:%Y%m%dT%H%M%SZ}",
        f"DTSTAMP:{modified:%Y%m%dT%H%M%SZ}",
        f"SEQUENCE:{sequence}",
        "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
    ]
    if rng.random() < 0.3:
        place, geo = rng.choice(_PLACES)
        lines += [f"LOCATION:{place}", f"X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-ADDRESS={place};X-TITLE=Venue:{geo}"]
    if rng.random() < 0.2:
        lines += [
            'ORGANIZER;CN="Sam Lee";EMAIL="sam.lee@example.com":mailto:sam.lee@example.com',
            'ATTENDEE;CN="Robin Example";CUTYPE=INDIVIDUAL;EMAIL="me@example.com";PARTSTAT=ACCEPTED;'
            "ROLE=REQ-PARTICIPANT:mailto:me@example.com",
        ]
    return lines


def _alarm(rng: random.Random) -> list[str]:
    if rng.random() >= 0.5:
        return []
    alarm = _uid(rng)
    return [
        "BEGIN:VALARM",
        f"X-WR-ALARMUID:{alarm}",
        f"UID:{alarm}",
        "TRIGGER:-PT15M",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "END:VALARM",
    ]


def _fold(line: str) -> list[str]:
    """RFC 5545 folding at 75 octets, as Apple writes long lines."""
    raw = line.encode()
    if len(raw) <= 75:
        return [line]
    parts, start, limit = [], 0, 75
    while start < len(raw):
        end = min(len(raw), start + limit)
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            end -= 1
        parts.append(raw[start:end].decode())
        start, limit = end, 74
    return [parts[0], *(" " + p for p in parts[1:])]


def _calendar(zone: str | None, vevents: list[list[str]]) -> str:
    lines = vcalendar_lines(*vevents, head=["CALSCALE:GREGORIAN", *vtimezone_for(zone)], prodid=APPLE_PRODID)
    return "".join(folded + "\r\n" for line in lines for folded in _fold(line))


def _single(rng: random.Random, n: int) -> tuple[str, list[list[str]]]:
    zone = rng.choices(_ZONES, _ZONE_WEIGHTS)[0]
    day = (ANCHOR - dt.timedelta(days=rng.randint(-180, 540))).date()
    start = dt.datetime.combine(day, dt.time(rng.randint(7, 19), rng.choice([0, 15, 30, 45])))
    end = start + dt.timedelta(minutes=rng.choice([15, 30, 30, 45, 60, 60, 90, 120]))
    vevent = [
        *_common(rng, _uid(rng), f"{rng.choice(_SUMMARIES)} #{n}", 0),
        f"DTSTART{stamp(start, zone)}",
        f"DTEND{stamp(end, zone)}",
        "TRANSP:" + ("TRANSPARENT" if rng.random() < 0.1 else "OPAQUE"),
        *_alarm(rng),
    ]
    return zone, [vevent]


def _weekly(rng: random.Random, n: int) -> tuple[str, list[list[str]]]:
    """A weekly series with 1-3 moved or retitled instances as RECURRENCE-ID VEVENTs, as iCloud stores them."""
    zone = rng.choices(_ZONES, _ZONE_WEIGHTS)[0]
    day = (ANCHOR - dt.timedelta(days=rng.randint(0, 700))).date()
    start = dt.datetime.combine(day, dt.time(rng.randint(7, 18), rng.choice([0, 30])))
    length = dt.timedelta(minutes=rng.choice([30, 45, 60, 90]))
    uid, summary = _uid(rng), f"{rng.choice(_SUMMARIES)} (weekly) #{n}"
    rule = f"FREQ=WEEKLY;BYDAY={_WEEKDAYS[start.weekday()] if start.weekday() < 5 else 'SA'}"
    ending = rng.choices(["open", "count", "until"], [50, 25, 25])[0]
    if ending == "count":
        rule += f";COUNT={rng.randint(10, 120)}"
    elif ending == "until":
        until = start + dt.timedelta(weeks=rng.randint(10, 150))
        rule += f";UNTIL={until.replace(tzinfo=dt.UTC):%Y%m%dT%H%M%SZ}"
    master = [
        *_common(rng, uid, summary, 1),
        f"RRULE:{rule}",
        f"DTSTART{stamp(start, zone)}",
        f"DTEND{stamp(start + length, zone)}",
        "TRANSP:OPAQUE",
    ]
    if rng.random() < 0.3:
        master.append(f"EXDATE{stamp(start + dt.timedelta(weeks=rng.randint(1, 8)), zone)}")
    master += _alarm(rng)
    vevents = [master]
    for week in sorted(rng.sample(range(9, 40), rng.randint(1, 3))):
        original = start + dt.timedelta(weeks=week)
        moved = original + dt.timedelta(hours=rng.choice([-2, -1, 1, 2, 24]))
        vevents.append(
            [
                *_common(rng, uid, summary + " (moved)", 2),
                f"RECURRENCE-ID{stamp(original, zone)}",
                f"DTSTART{stamp(moved, zone)}",
                f"DTEND{stamp(moved + length, zone)}",
                "TRANSP:OPAQUE",
            ]
        )
    return zone, vevents


def _allday(rng: random.Random, n: int) -> tuple[None, list[list[str]]]:
    day = (ANCHOR - dt.timedelta(days=rng.randint(-180, 540))).date()
    vevent = [
        *_common(rng, _uid(rng), f"Away #{n}", 0),
        f"DTSTART{stamp(day, None)}",
        f"DTEND{stamp(day + dt.timedelta(days=rng.choice([1, 1, 1, 2, 3, 7])), None)}",
        "TRANSP:" + ("OPAQUE" if rng.random() < 0.3 else "TRANSPARENT"),
        "X-MICROSOFT-CDO-ALLDAYEVENT:TRUE",
    ]
    return None, [vevent]


def generate_events(
    total: int, seed: int = 2026, *, weekly_share: float = 0.15, allday_share: float = 0.05
) -> list[tuple[str, str]]:
    """`total` iCloud-shaped resources `(NAME.ics, text)`: 80 % single, 15 % weekly with overrides, 5 % all-day.

    Deterministic for a given (total, seed): peers and calmirror are fed byte-identical data,
    and a re-run compares like with like. Shares are exact (rounded), then shuffled.
    """
    rng = random.Random(seed)
    weekly, allday = round(total * weekly_share), round(total * allday_share)
    kinds = ["weekly"] * weekly + ["allday"] * allday + ["single"] * (total - weekly - allday)
    rng.shuffle(kinds)
    makers = {"single": _single, "weekly": _weekly, "allday": _allday}
    out: list[tuple[str, str]] = []
    for n, kind in enumerate(kinds):
        zone, vevents = makers[kind](rng, n)
        out.append((f"{_uid(rng)}.ics", _calendar(zone, vevents)))
    return out


def mix_of(events: Sequence[tuple[str, str]]) -> Mix:
    """Classify generated resources (by content) so the table can state what was measured."""
    single = weekly = allday = vevents = 0
    for _name, text in events:
        vevents += text.count("BEGIN:VEVENT")
        if "RRULE:FREQ=WEEKLY" in text:
            weekly += 1
        elif "DTSTART;VALUE=DATE" in text:
            allday += 1
        else:
            single += 1
    return Mix(single, weekly, allday, vevents)
