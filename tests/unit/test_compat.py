"""Compatible copies keep busy time: the engine over the copy equals the engine over the exact
text in windows inside the horizon, and Radicale's own check accepts the copy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror import compat
from calmirror.availability import engine as av
from calmirror.local.items import Limits, PreparedItem, prepare_one
from calmirror.testing.ical import event
from tests.radicale_view import radicale_starts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"
HORIZON = dt.date(2032, 1, 1)
UTC = dt.UTC
RULES = av.Rules(tz=ZoneInfo("Europe/Berlin"))
HREF = "https://p01.example/1/calendars/work/x.ics"


def busy(text: str, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    return av.busy_intervals([av.Source("s", [av.parse_calendar(text)])], start, end, RULES)


def copy_of(text: str) -> compat.Compatible:
    refused = prepare_one("x.ics", text, Limits())
    made = compat.compatible_copy(
        text, HREF, HORIZON, Limits().max_rrule_occurrence, refused=refused if isinstance(refused, str) else ""
    )
    assert made is not None
    return made


def fixture(name: str) -> str:
    return next(FIXTURES.glob(f"*/{name}")).read_bytes().decode()


def test_each_refused_shape_gets_a_copy_radicale_takes_with_the_same_busy_time() -> None:
    window = (dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2028, 1, 1, tzinfo=UTC))
    for name, reason in (
        ("invitation-two-occurrences-no-master-berlin.ics", compat.MASTERLESS),
        ("vitamins-daily-count-1e9-reminder-berlin.ics", compat.BOUNDED),
        ("workshop-rdate-periods-berlin.ics", compat.PERIODS),
        ("exchange-customized-tz-plus3.ics", compat.ZONES),
        ("exchange-customized-tz-us-eastern.ics", compat.ZONES),
    ):
        text = fixture(name)
        made = copy_of(text)
        assert any(r.startswith(reason) for r in made.reasons), (name, made.reasons)
        assert isinstance(prepare_one("x.ics", made.text, Limits()), PreparedItem), name
        assert busy(made.text, *window) == busy(text, *window), name
        assert f"{compat.COPY_OF}:" in made.text and made.text.count(f"{compat.COMPAT_MARKER}:") == made.text.count(
            "BEGIN:VEVENT"
        )


def test_two_customized_time_zones_get_different_names_and_the_same_definition_the_same() -> None:
    plus3 = copy_of(fixture("exchange-customized-tz-plus3.ics")).text
    eastern = copy_of(fixture("exchange-customized-tz-us-eastern.ics")).text
    names = {
        text: {line for line in text.splitlines() if line.startswith("TZID:Customized Time Zone ")}
        for text in (plus3, eastern)
    }
    assert len(names[plus3]) == len(names[eastern]) == 1 and names[plus3] != names[eastern]
    assert copy_of(fixture("exchange-customized-tz-plus3.ics")).text == plus3  # deterministic


def test_the_horizon_moves_once_a_year_and_the_copy_follows_it() -> None:
    assert compat.horizon_for(dt.date(2026, 12, 7)) == dt.date(2032, 1, 1)
    assert compat.horizon_for(dt.date(2027, 1, 1)) == dt.date(2033, 1, 1)
    text = fixture("vitamins-daily-count-1e9-reminder-berlin.ics")
    later = compat.compatible_copy(text, HREF, dt.date(2033, 1, 1), 10_000)
    assert later is not None and later.horizon == "2033-01-01" and "UNTIL=20321231" in later.text
    window = (dt.datetime(2032, 6, 1, tzinfo=UTC), dt.datetime(2032, 6, 3, tzinfo=UTC))
    assert busy(later.text, *window) == busy(text, *window) != []


def test_a_yearly_rule_written_as_forever_is_bounded_at_the_horizon() -> None:
    """Radicale's estimate of a YEARLY COUNT=1000000000 (a birthday "forever") lies past the
    year 9999; working it out raised OverflowError and failed every mirror pass of the calendar."""
    text = event(
        "birthday", "Birthday", "20261209T180000Z", "20261209T200000Z", extra="RRULE:FREQ=YEARLY;COUNT=1000000000\r\n"
    )
    made = copy_of(text)
    assert "UNTIL=20311209T180000Z" in made.text and "COUNT" not in made.text
    assert isinstance(prepare_one("x.ics", made.text, Limits()), PreparedItem)
    window = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2031, 12, 31, tzinfo=UTC))
    assert busy(made.text, *window) == busy(text, *window) != []


def test_a_filtered_hourly_rule_forever_becomes_its_daily_equivalent_reaching_the_horizon() -> None:
    """`FREQ=HOURLY;BYHOUR=9` is every day at 9; bounded as an HOURLY rule, Radicale's estimate
    (one occurrence an hour) stopped the copy after 10,000 hours, 14 months. As the DAILY rule
    with the same occurrences it reaches the horizon."""
    text = event(
        "nine", "Nine", "20261209T090000Z", "20261209T091500Z", extra="RRULE:FREQ=HOURLY;BYHOUR=9;COUNT=1000000000\r\n"
    )
    made = copy_of(text)
    assert "FREQ=DAILY" in made.text and "UNTIL=20311231T090000Z" in made.text
    assert isinstance(prepare_one("x.ics", made.text, Limits()), PreparedItem)
    for year in (2027, 2031):
        window = (dt.datetime(year, 3, 1, tzinfo=UTC), dt.datetime(year, 4, 30, tzinfo=UTC))
        assert busy(made.text, *window) == busy(text, *window) != []


def test_an_event_with_both_dtend_and_duration_keeps_its_dtend() -> None:
    """Not allowed by RFC 5545, refused by Radicale ("cannot contain both DTEND and DURATION"):
    the copy keeps the DTEND, which busy time reads, and Radicale takes it."""
    text = event("both", "Both", "20261210T100000Z", "20261210T110000Z", extra="DURATION:PT3H\r\n")
    assert isinstance(prepare_one("x.ics", text, Limits()), str)
    made = copy_of(text)
    assert "DURATION" not in made.text.replace(compat.BOTH_ENDS, "") and "DTEND:20261210T110000Z" in made.text
    assert isinstance(prepare_one("x.ics", made.text, Limits()), PreparedItem)
    window = (dt.datetime(2026, 12, 10, tzinfo=UTC), dt.datetime(2026, 12, 11, tzinfo=UTC))
    assert (
        busy(made.text, *window)
        == busy(text, *window)
        == [(dt.datetime(2026, 12, 10, 10, tzinfo=UTC), dt.datetime(2026, 12, 10, 11, tzinfo=UTC))]
    )


def test_an_object_with_nothing_to_fix_has_no_copy() -> None:
    assert compat.compatible_copy(fixture("team-sync-weekly-ny-dst-exdate-moved.ics"), HREF, HORIZON, 10_000) is None
    assert compat.compatible_copy("not iCalendar", HREF, HORIZON, 10_000) is None


# --- generated objects ------------------------------------------------------------------------

ZONES = {
    "UTC": None,
    "Europe/Berlin": None,
    "Customized Time Zone": (
        "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
        "TZOFFSETFROM:{off}\r\nTZOFFSETTO:{off}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    ),
}


@st.composite
def objects(draw: st.DrawFn) -> str:
    zone = draw(st.sampled_from(sorted(ZONES)))
    offset = draw(st.sampled_from(["+0300", "-0500", "+0530"]))
    day = dt.datetime(2027, 1, 4, 0, 0) + dt.timedelta(days=draw(st.integers(0, 60)), hours=draw(st.integers(6, 20)))
    length = dt.timedelta(minutes=draw(st.sampled_from([15, 30, 60, 90])))

    def stamp(when: dt.datetime) -> str:
        if zone == "UTC":
            return f":{when:%Y%m%dT%H%M%S}Z"
        return f";TZID={zone}:{when:%Y%m%dT%H%M%S}"

    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    tz = (ZONES[zone] or "").format(off=offset)
    shape = draw(st.sampled_from(["masterless", "count", "periods", "zone"]))
    events: list[str] = []
    if shape == "masterless":
        for n in range(draw(st.integers(2, 4))):
            rid = day + dt.timedelta(days=7 * n)
            moved = rid + dt.timedelta(hours=draw(st.integers(-3, 3)))
            events.append(
                f"UID:inv\r\nRECURRENCE-ID{stamp(rid)}\r\nDTSTART{stamp(moved)}\r\nDTEND{stamp(moved + length)}\r\n"
                f"SUMMARY:Occurrence {n}\r\n"
            )
    else:
        rule = ""
        if shape == "count":
            freq = draw(st.sampled_from(["DAILY", "WEEKLY;BYDAY=MO,WE,FR", "HOURLY;INTERVAL=7"]))
            rule = f"RRULE:FREQ={freq};COUNT={draw(st.sampled_from([10_001, 50_000, 1_000_000_000]))}\r\n"
        elif shape == "periods":
            rule = "RRULE:FREQ=WEEKLY;COUNT=5\r\n"
            starts = [
                day + dt.timedelta(days=draw(st.integers(1, 40)), hours=1) for _ in range(draw(st.integers(1, 3)))
            ]
            values = ",".join(
                f"{s:%Y%m%dT%H%M%S}{'Z' if zone == 'UTC' else ''}/"
                + draw(st.sampled_from([f"{s + length * 2:%Y%m%dT%H%M%S}{'Z' if zone == 'UTC' else ''}", "PT45M"]))
                for s in sorted(set(starts))
            )
            params = "" if zone == "UTC" else f";TZID={zone}"
            rule += f"RDATE;VALUE=PERIOD{params}:{values}\r\n"
        events.append(f"UID:gen\r\nDTSTART{stamp(day)}\r\nDTEND{stamp(day + length)}\r\n{rule}SUMMARY:Generated\r\n")
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20261101T000000Z\r\n{e}END:VEVENT\r\n" for e in events)
    return head + tz + body + "END:VCALENDAR\r\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=objects(), start_day=st.integers(0, 400))
def test_generated_objects_keep_their_busy_time_inside_the_horizon(text: str, start_day: int) -> None:
    made = compat.compatible_copy(text, HREF, HORIZON, 10_000, refused="Too many recurrence rule entries")
    if made is None:
        return  # nothing Radicale minds (an IANA zone and no refused shape)
    start = dt.datetime(2027, 1, 1, tzinfo=UTC) + dt.timedelta(days=start_day)
    window = (start, start + dt.timedelta(days=45))
    if compat.BOUNDED in made.reason and "HOURLY" in text:
        window = (dt.datetime(2027, 1, 1, tzinfo=UTC), dt.datetime(2027, 3, 1, tzinfo=UTC))  # the limit comes first
    assert busy(made.text, *window) == busy(text, *window)
    assert isinstance(prepare_one("x.ics", made.text, Limits()), PreparedItem), made.text


def test_a_rule_too_frequent_for_the_limit_written_as_forever_reaches_every_window() -> None:
    """Every 90 minutes, COUNT=1000000000: 10,000 occurrences (Radicale's limit) are two weeks,
    so a copy bounded by an UNTIL stopped there for clients. The rule runs past the horizon,
    so the copy drops its COUNT: the same occurrences, and Radicale counts no open rule."""
    text = event(
        "often",
        "Often",
        "20261209T090000Z",
        "20261209T093000Z",
        extra="RRULE:FREQ=MINUTELY;INTERVAL=90;COUNT=1000000000\r\n",
    )
    made = copy_of(text)
    assert made.reasons == (f"{compat.OPENED} (horizon {HORIZON.isoformat()})",) and made.horizon
    assert "RRULE:FREQ=MINUTELY;INTERVAL=90\r\n" in made.text
    stored = prepare_one("x.ics", made.text, Limits())
    assert isinstance(stored, PreparedItem)
    for years in (0, 1, 3, 8):  # past the horizon too
        start = dt.datetime(2027, 2, 1, tzinfo=UTC) + dt.timedelta(days=365 * years)
        window = (start, start + dt.timedelta(days=3))
        assert busy(made.text, *window) == busy(text, *window) != []
        assert radicale_starts(made.text, window), years  # Radicale's own walk gets there
