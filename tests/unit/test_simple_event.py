"""The busy index's fast path for plain one-event resources equals the full path or declines.

`simple_event.single_of` reads a single event from its lines instead of icalendar's parse;
for every text it must either decline (None) or give exactly what the full path compiles
(`parse_calendar` + `recurrence.compile_calendar`), and the index entry built from it must be
the full path's entry. Checked over generated events (zones, DST edges, all-day, durations,
statuses, attendee shapes, folding, the shapes it must decline) and over every text of the
fixtures, the hostile corpus, the iCloud shapes and the benchmark corpus.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.availability import engine, spans
from calmirror.availability.compiled import Single
from calmirror.availability.instants import Time
from calmirror.availability.simple_event import single_of
from calmirror.model import IndexedItem
from calmirror.testing import ical
from calmirror.testing.corpus import generate_events
from tests.corpora import corpus_texts

UTC = dt.UTC
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"
NOW = dt.datetime(2026, 12, 7, 12, tzinfo=UTC)
RULES = (
    engine.Rules(tz=ZoneInfo("Europe/Berlin"), me=frozenset({"me@example.com", "Alias@Example.com"})),
    engine.Rules(tz=ZoneInfo("America/New_York")),
)
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "Europe/London",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "US/Eastern",
]
# Days with a DST change in at least one of the zones above, and ordinary days.
DAYS = [
    dt.date(2026, 3, 29),
    dt.date(2026, 10, 25),
    dt.date(2026, 11, 1),
    dt.date(2027, 3, 14),
    dt.date(2026, 4, 5),
    dt.date(2026, 10, 4),
    dt.date(2026, 12, 7),
    dt.date(2027, 2, 28),
    dt.date(2025, 12, 31),
    dt.date(1985, 6, 1),
]


def full_single(text: str) -> tuple[list[Single], int, list[tuple[str, str]]]:
    """What the full path compiles: its singles, how many series, what it skipped."""
    try:
        found = engine.item_index(engine.parse_calendar(text))
    except ValueError:
        return [], 0, []
    return [*found.short, *found.long], len(found.series), found.skipped


def same_time(a: Time, b: Time) -> bool:
    if type(a) is not type(b):
        return False
    if not isinstance(a, dt.datetime) or not isinstance(b, dt.datetime):
        return a == b
    if (a.tzinfo is None) != (b.tzinfo is None) or a.replace(tzinfo=None) != b.replace(tzinfo=None):
        return False
    return a.tzinfo is None or (a.utcoffset() == b.utcoffset() and a == b)


def entries(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[IndexedItem], list[IndexedItem]]:
    """The index entries (every rule set) with the fast path, and with it switched off."""
    window = spans.horizon_at(NOW)
    fast = [spans.index_text(text, rules, window) for rules in RULES]
    with monkeypatch.context() as patched:
        patched.setattr(spans, "single_of", lambda _text: None)
        full = [spans.index_text(text, rules, window) for rules in RULES]
    return fast, full


def assert_equal_or_declined(text: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """True when the fast path answered (and equalled the full path)."""
    fast = single_of(text)
    if fast is None:
        return False
    singles, series, skipped = full_single(text)
    assert series == 0 and len(singles) == 1, text
    assert skipped == [], text
    full = singles[0]
    assert (fast.uid, fast.info) == (full.uid, full.info), text
    assert same_time(fast.start, full.start), (text, fast.start, full.start)
    assert same_time(fast.end, full.end), (text, fast.end, full.end)
    assert (fast.lo, fast.hi) == (full.lo, full.hi), text
    got, want = entries(text, monkeypatch)
    assert got == want, text
    return True


# --- generated events ---------------------------------------------------------------------------


def fold(line: str) -> str:
    """RFC 5545 folding at 74 characters (a space starts each continuation)."""
    if len(line) <= 74:
        return line
    parts = [line[:74]]
    rest = line[74:]
    while rest:
        parts.append(" " + rest[:73])
        rest = rest[73:]
    return "\r\n".join(parts)


@st.composite
def times(draw: st.DrawFn, kind: str, zone: str) -> str:
    """A DTSTART/DTEND value with its parameters, in `kind` (date, floating, utc, zoned)."""
    day = draw(st.sampled_from(DAYS)) + dt.timedelta(days=draw(st.integers(-1, 2)))
    if kind == "date":
        return f";VALUE=DATE:{day:%Y%m%d}" if draw(st.booleans()) else f":{day:%Y%m%d}"
    hour, minute = draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45, 59]))
    second = draw(st.sampled_from([0, 0, 0, 30]))
    stamp = f"{day:%Y%m%d}T{hour:02d}{minute:02d}{second:02d}"
    if kind == "utc":
        return f":{stamp}Z"
    if kind == "floating":
        return f":{stamp}"
    quoted = draw(st.booleans())
    value = draw(st.sampled_from(["", ";VALUE=DATE-TIME"]))
    return f";TZID={chr(34) + zone + chr(34) if quoted else zone}{value}:{stamp}"


DURATIONS = ["PT1H", "PT30M", "PT45M10S", "P1D", "P2D", "PT24H", "PT25H", "P1DT2H", "P1W", "PT0S", "-PT1H", "P1DT25H"]
ADDRESSES = ["mailto:me@example.com", "MAILTO:Me@Example.COM", "mailto:other@example.org", "mailto:alias@example.com"]


@st.composite
def attendee(draw: st.DrawFn) -> str:
    params: list[str] = []
    if draw(st.booleans()):
        params.append(draw(st.sampled_from(['CN="Sam, Smith"', "CN=Sam", 'CN="a:b;c"', "CN=x%2Cy", "CN=x^ny"])))
    if draw(st.booleans()):
        email = draw(st.sampled_from(["me@example.com", "Alias@example.com", "x@y.z", ""]))
        params.append(draw(st.sampled_from([f"EMAIL={email}", f'EMAIL="{email}"', f"email={email}"])))
    if draw(st.booleans()):
        status = draw(st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION", "declined", "X-ODD", ""]))
        params.append(draw(st.sampled_from([f"PARTSTAT={status}", f'PARTSTAT="{status}"', f"PARTSTAT={status},X"])))
    if draw(st.booleans()):
        params.append("ROLE=REQ-PARTICIPANT;RSVP=TRUE")
    params = draw(st.permutations(params))
    address = draw(st.sampled_from([*ADDRESSES, "mailto:a\\,b@example.com"]))
    return "ATTENDEE" + "".join(";" + p for p in params) + ":" + address


@st.composite
def simple_events(draw: st.DrawFn) -> str:
    """An event the fast path is meant for, with now and then a shape it must decline."""
    kind = draw(st.sampled_from(["date", "floating", "utc", "zoned", "zoned"]))
    zone = draw(st.sampled_from(ZONES))
    lines = [f"DTSTART{draw(times(kind, zone))}"]
    end = draw(st.sampled_from(["dtend", "duration", "none"]))
    if end == "dtend":
        other = draw(st.sampled_from([kind, kind, kind, "utc", "date"]))
        lines.append(f"DTEND{draw(times(other, draw(st.sampled_from(ZONES))))}")
    elif end == "duration":
        lines.append(f"DURATION:{draw(st.sampled_from(DURATIONS))}")
    lines.append(draw(st.sampled_from(["UID:ev-1", "UID:ev\\,2", "UID:", "UID:ABC-DEF-123"])))
    if draw(st.booleans()):
        summary = draw(st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=90))
        lines.append("SUMMARY:" + draw(st.sampled_from(["", "Lunch\\, Alex \\n", "a\\;b\\\\c"])) + summary)
    for name, values in (
        ("TRANSP", ["OPAQUE", "TRANSPARENT", "transparent ", "X"]),
        ("STATUS", ["CONFIRMED", "TENTATIVE", "CANCELLED", "cancelled", "X"]),
        ("X-MICROSOFT-CDO-BUSYSTATUS", ["FREE", "TENTATIVE", "BUSY", "OOF"]),
        ("X-APPLE-TRAVEL-DURATION;VALUE=DURATION", ["PT30M", "PT1H", "-PT5M", "PT0S", "xyz"]),
        ("X-APPLE-TRAVEL-DURATION", ["PT15M"]),
    ):
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"{name}:{draw(st.sampled_from(values))}")
    lines.extend(draw(st.lists(attendee(), max_size=3)))
    extra = draw(
        st.sampled_from(
            [
                *("", "", "", "alarm", "zone", "long", "rrule", "recurrence-id", "two", "dup", "lower", "xwr"),
                *("bad-top", "bad-alarm", "junk", "second-calendar"),
            ]
        )
    )
    head: list[str] = ["CALSCALE:GREGORIAN"] if draw(st.booleans()) else []
    components: list[str] = []
    alarm: list[str] = []
    if extra == "alarm":
        alarm = ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "UID:alarm", "END:VALARM"]
    elif extra == "zone" and zone in ical.VTIMEZONES:
        components.extend(ical.VTIMEZONES[zone])
    elif extra == "long":
        lines.append("DESCRIPTION:" + "Agenda: " * 30)
    elif extra == "rrule":
        lines.append("RRULE:FREQ=DAILY;COUNT=3")
    elif extra == "recurrence-id":
        lines.append(lines[0].replace("DTSTART", "RECURRENCE-ID", 1))
    elif extra == "dup":
        lines.append("SUMMARY:again")
    elif extra == "lower":
        lines.append("transp:TRANSPARENT")
    elif extra == "xwr":
        head.append("X-WR-TIMEZONE:America/New_York")
    elif extra == "bad-top":  # a value icalendar cannot read fails the whole object at the top
        head.append(draw(st.sampled_from(["REFRESH-INTERVAL;VALUE=DURATION:xyz", "X-FOO;VALUE=DURATION:xyz"])))
    elif extra == "bad-alarm":  # ... and in an alarm, which the lenient reader then leaves out
        alarm = ["BEGIN:VALARM", "TRIGGER:xyz", "END:VALARM"]
    elif extra == "junk":  # lines icalendar cannot split or read inside the event
        lines.append(draw(st.sampled_from(["FOO;", "DTSTAMP:garbage", "SEQUENCE:abc", "GEO:x", "ORGANIZER;CN=x"])))
    events = ["BEGIN:VEVENT", "DTSTAMP:20260101T000000Z", *draw(st.permutations(lines)), *alarm, "END:VEVENT"]
    if extra == "two":
        events += ["BEGIN:VEVENT", "UID:other", "DTSTART:20261201T100000Z", "END:VEVENT"]
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *head, *components, *events, "END:VCALENDAR"]
    if extra == "second-calendar":
        body += ["BEGIN:VCALENDAR", "END:VCALENDAR"]
    newline = draw(st.sampled_from(["\r\n", "\r\n", "\n"]))
    return newline.join(fold(line) for line in "\r\n".join(body).split("\r\n")) + newline


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(simple_events())
def test_generated_events_equal_the_full_path_or_decline(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    assert_equal_or_declined(text, monkeypatch)


# --- every corpus the tests hold ----------------------------------------------------------------


def test_every_corpus_text_equals_the_full_path_or_declines(monkeypatch: pytest.MonkeyPatch) -> None:
    answered = sum(assert_equal_or_declined(text, monkeypatch) for _name, text in corpus_texts(400, seed=7))
    assert answered > 300  # the fast path is taken, not declined everywhere


def test_the_benchmark_corpus_singles_all_take_the_fast_path() -> None:
    """Apple-shaped single and all-day events (VTIMEZONE, alarms, folded lines) are what it is for."""
    plain = [text for _name, text in generate_events(300, seed=11) if "RRULE:FREQ=WEEKLY" not in text]
    assert plain and all(single_of(text) is not None for text in plain)


@pytest.mark.parametrize(
    "name",
    [
        "design-review-duration-kolkata.ics",
        "partner-checkin-utc-accepted.ics",
        "vendor-pitch-declined-berlin.ics",
        "budget-review-status-cancelled-ny.ics",
        "submission-deadline-zero-length-berlin.ics",
    ],
)
def test_plain_fixtures_take_the_fast_path(name: str) -> None:
    assert single_of((FIXTURES / "Work" / name).read_text(encoding="utf-8")) is not None


@pytest.mark.parametrize(
    "text",
    [
        ical.vcalendar(["UID:r", "DTSTART:20261201T100000Z", "RRULE:FREQ=DAILY;COUNT=2"]),
        ical.vcalendar(["UID:w", "DTSTART;TZID=W. Europe Standard Time:20261201T100000"]),
        ical.vcalendar(["UID:x", "DTSTART:20261201T100000"], head=["X-WR-TIMEZONE:Europe/Berlin"]),
        ical.vcalendar(["UID:a", "DTSTART:20261201T100000Z"], ["UID:b", "DTSTART:20261202T100000Z"]),
        ical.vcalendar(["UID:m", "DTSTART:20261201T100000Z", "DTEND;VALUE=DATE:20261202"]),
    ],
    ids=["rrule", "windows-zone", "x-wr-timezone", "two-events", "mixed-kinds"],
)
def test_declines_what_the_full_path_must_read(text: str) -> None:
    assert single_of(text) is None
