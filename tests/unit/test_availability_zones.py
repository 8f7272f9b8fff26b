"""Zones come from each object's own definition, never from another object's by name."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import icalendar
import pytest

from calmirror.availability import engine as av
from calmirror.availability import zones
from calmirror.testing import ical

UTC = dt.UTC
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 8, 1, tzinfo=UTC))
CUSTOM = "Customized Time Zone"


def exchange(uid: str, standard: str, daylight: str | None, *, define: bool = True, tzid: str = CUSTOM) -> str:
    """An Exchange-style invitation on Mondays 10:00 in its own zone (DST rules optional)."""
    head: list[str] = []
    if define:
        head = ical.vtimezone(
            tzid,
            standard=("Standard", standard, "16010101T030000", "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"),
            daylight=("Daylight", daylight or standard, "16010101T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
        )
    event = [
        f"UID:{uid}",
        "DTSTAMP:20261101T000000Z",
        f"DTSTART;TZID={tzid}:20261207T100000",
        f"DTEND;TZID={tzid}:20261207T110000",
        "RRULE:FREQ=WEEKLY;COUNT=2",
        f"SUMMARY:{uid}",
    ]
    return ical.vcalendar(event, head=head, prodid="-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def busy_of(*texts: str, tz: str = "UTC") -> list[tuple[dt.datetime, dt.datetime]]:
    source = av.Source("s", [av.parse_calendar(t) for t in texts])
    return av.busy_intervals([source], *WINDOW, av.Rules(ZoneInfo(tz)))


# Moscow-like +03:00 without DST, and New-York-like -05:00/-04:00 with DST
A = exchange("org-a", "+0300", None)
B = exchange("org-b", "-0500", "-0400")
A_BUSY = [(z("2026-12-07 07:00"), z("2026-12-07 08:00")), (z("2026-12-14 07:00"), z("2026-12-14 08:00"))]
B_BUSY = [(z("2026-12-07 15:00"), z("2026-12-07 16:00")), (z("2026-12-14 15:00"), z("2026-12-14 16:00"))]


@pytest.mark.parametrize("order", ["AB", "BA"])
def test_two_customized_time_zones_are_each_placed_by_their_own_definition(order: str) -> None:
    texts = {"A": A, "B": B}
    for name in order:  # each parsed on its own, in this order, in one process
        av.clear_cache()
        assert busy_of(texts[name]) == (A_BUSY if name == "A" else B_BUSY), name
    # and together in one source, both orders of the calendars
    assert busy_of(*(texts[n] for n in order)) == sorted(A_BUSY + B_BUSY)


def test_warm_cache_keeps_each_definition() -> None:
    cal_a, cal_b = av.parse_calendar(A), av.parse_calendar(B)
    rules = av.Rules(ZoneInfo("UTC"))
    first = av.busy_intervals([av.Source("a", [cal_a]), av.Source("b", [cal_b])], *WINDOW, rules)
    # the same parsed objects asked again hit the memos; a fresh parse of B in between changes nothing
    av.parse_calendar(B)
    again = av.busy_intervals([av.Source("b", [cal_b]), av.Source("a", [cal_a])], *WINDOW, rules)
    assert first == again == sorted(A_BUSY + B_BUSY)


def test_a_worker_process_parsing_in_either_order_agrees() -> None:
    script = (
        "import datetime as dt, sys\n"
        "from zoneinfo import ZoneInfo\n"
        "from calmirror.availability import engine as av\n"
        "w = (dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC))\n"
        "texts = sys.stdin.read().split('\\x00')\n"
        "for t in texts:\n"
        "    got = av.busy_intervals([av.Source('s', [av.parse_calendar(t)])], *w, av.Rules(ZoneInfo('UTC')))\n"
        "    print(got[0][0].strftime('%H:%M'))\n"
    )
    for texts, expected in (([A, B], "07:00\n15:00\n"), ([B, A], "15:00\n07:00\n")):
        out = subprocess.run(
            [sys.executable, "-c", script], input="\x00".join(texts), capture_output=True, text=True, check=True
        )
        assert out.stdout == expected


def test_a_name_used_without_its_definition_never_borrows_another_objects() -> None:
    av.parse_calendar(A)  # icalendar now holds A's definition under the plain name
    lone = exchange("no-definition", "+0300", None, define=False)
    rules = av.Rules(ZoneInfo("Europe/Berlin"))
    source = av.Source("s", [av.parse_calendar(lone)])
    # read as floating: wall time in the configured zone (Berlin, +01:00 in December)
    assert av.busy_intervals([source], *WINDOW, rules)[0] == (z("2026-12-07 09:00"), z("2026-12-07 10:00"))
    reasons = [s.reason for s in av.skipped([source], *WINDOW, rules)]
    assert reasons == ["unknown TZID 'Customized Time Zone' read in the configured zone"]


def test_unknown_tzid_counts_in_the_configured_zone_and_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    text = ical.vcalendar(
        ["UID:mars", "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Mars/Olympus_Mons:20261207T100000", "DURATION:PT1H"]
    )
    source = av.Source("s", [av.parse_calendar(text)])
    rules = av.Rules(ZoneInfo("America/New_York"))
    assert av.busy_intervals([source], *WINDOW, rules) == [(z("2026-12-07 15:00"), z("2026-12-07 16:00"))]
    assert [s.uid for s in av.skipped([source], *WINDOW, rules)] == ["mars"]
    assert not [r for r in caplog.records if r.name == "root"]


@pytest.mark.parametrize("define", [False, True])
def test_windows_zone_names_with_and_without_a_definition(define: bool) -> None:
    text = exchange("win", "+0100", "+0200", define=define, tzid="W. Europe Standard Time")
    assert busy_of(text) == [
        (z("2026-12-07 09:00"), z("2026-12-07 10:00")),
        (z("2026-12-14 09:00"), z("2026-12-14 10:00")),
    ]


def test_windows_name_with_its_own_differing_definition_follows_the_definition() -> None:
    av.parse_calendar(exchange("first", "+0100", "+0200", tzid="Eastern Standard Time"))
    odd = exchange("odd", "-0600", None, tzid="Eastern Standard Time")
    assert busy_of(odd)[0] == (z("2026-12-07 16:00"), z("2026-12-07 17:00"))
    plain = exchange("plain", "+0000", None, define=False, tzid="Eastern Standard Time")
    assert busy_of(plain)[0] == (z("2026-12-07 15:00"), z("2026-12-07 16:00"))  # CLDR: America/New_York


def test_dst_rules_of_a_custom_definition_apply() -> None:
    summer = B.replace("20261207T", "20270607T")
    assert busy_of(summer) == [
        (z("2027-06-07 14:00"), z("2027-06-07 15:00")),  # -04:00 in its own daylight time
        (z("2027-06-14 14:00"), z("2027-06-14 15:00")),
    ]


def _vtimezone_lines(text: str) -> list[str]:
    lines = text.split("\r\n")
    return lines[lines.index("BEGIN:VTIMEZONE") : lines.index("END:VTIMEZONE") + 1]


def test_custom_tzids_from_text_and_from_a_calendar() -> None:
    mixed = ical.vcalendar(
        [
            "UID:m",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID={CUSTOM}:20261207T100000",
            "DTEND;TZID=W. Europe Standard Time:20261207T110000",
            "EXDATE;TZID=Europe/Berlin:20261208T100000",
        ],
        head=[*ical.VTIMEZONES["Europe/Berlin"], *_vtimezone_lines(A)],
    )
    assert zones.custom_tzids(mixed) == {CUSTOM, "W. Europe Standard Time"}
    assert zones.custom_tzids(mixed.encode()) == {CUSTOM, "W. Europe Standard Time"}
    assert zones.custom_tzids(icalendar.Calendar.from_ical(mixed)) == {CUSTOM, "W. Europe Standard Time"}
    assert zones.custom_tzids(ical.vcalendar(["UID:x", "DTSTART:20261207T100000Z"])) == set()


def test_definition_digest_tells_definitions_apart_not_names() -> None:
    def block(text: str) -> icalendar.Component:
        return icalendar.Calendar.from_ical(text).walk("VTIMEZONE")[0]

    a, b = block(A), block(B)
    renamed = block(exchange("x", "+0300", None, tzid="Other Name"))
    assert zones.definition_digest(a) != zones.definition_digest(b)
    assert zones.definition_digest(a) == zones.definition_digest(renamed)
    assert zones.definition_digest(a) == zones.definition_digest(a.to_ical())
    assert len(zones.definition_digest(a)) == 12


def test_iana_names_and_globally_unique_prefixes() -> None:
    assert zones.iana_name("Europe/Berlin") == "Europe/Berlin"
    assert zones.iana_name("/freeassociation.sourceforge.net/Europe/Berlin") == "Europe/Berlin"
    assert zones.iana_name(CUSTOM) is None
    assert zones.windows_name("W. Europe Standard Time") == "Europe/Berlin"
    assert zones.is_custom("Eastern Standard Time") and not zones.is_custom("UTC")


def test_custom_tzids_with_colons_in_a_quoted_name() -> None:
    name = "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"
    text = exchange("quoted", "+0100", "+0200", tzid=name).replace(f"TZID={name}:", f'TZID="{name}":')
    assert zones.custom_tzids(text) == {name}
    assert zones.custom_tzids(icalendar.Calendar.from_ical(text)) == {name}
    assert busy_of(text)[0] == (z("2026-12-07 09:00"), z("2026-12-07 10:00"))


@pytest.mark.parametrize(
    ("start", "end", "busy"),
    [
        ("20270328T014500", "20270328T021500", ("2027-03-28T00:45", "2027-03-28T01:15")),  # ends in the gap
        ("20270328T023000", "20270328T033000", ("2027-03-28T01:30", "2027-03-28T01:30")),  # starts in it
        ("20270328T023000", "20270328T040000", ("2027-03-28T01:30", "2027-03-28T02:00")),
    ],
)
def test_a_time_the_spring_change_skips_is_read_with_the_offset_before_it(
    start: str, end: str, busy: tuple[str, str]
) -> None:
    """RFC 5545 3.3.5, as zoneinfo reads IANA zones; a zone defined in the object (dateutil's)
    read 02:15 an hour early, so a meeting at 01:45-02:15 on 28 March 2027 ended before it
    began and its busy time was lost (found by test_busy_differential)."""
    expected = [(dt.datetime.fromisoformat(busy[0] + "+00:00"), dt.datetime.fromisoformat(busy[1] + "+00:00"))]
    expected = [s for s in expected if s[0] < s[1]]
    window = (dt.datetime(2027, 3, 27, 12, tzinfo=UTC), dt.datetime(2027, 3, 28, 12, tzinfo=UTC))
    rules = av.Rules(tz=ZoneInfo("UTC"))
    for tzid in (CUSTOM, "Europe/Berlin"):
        head = ical.vtimezone(
            tzid,
            standard=("Standard", "+0100", "16010101T030000", "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"),
            daylight=("Daylight", "+0200", "16010101T020000", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
        )
        lines = ["UID:gap", "DTSTAMP:20261101T000000Z", f"DTSTART;TZID={tzid}:{start}", f"DTEND;TZID={tzid}:{end}"]
        for extra in ([], ["RRULE:FREQ=DAILY;COUNT=3"]):
            text = ical.vcalendar([*lines, *extra], head=head)
            source = av.Source("s", [av.parse_calendar(text)])
            assert av.busy_intervals([source], *window, rules) == expected, (tzid, extra)
