"""Series readers disagree on, counted and copied so every reader sees the same busy time:
a DATE UNTIL on a timed rule (the whole last day counts) and an override of an occurrence an
EXDATE removes (the override counts). Each is checked three ways: the engine over iCloud's
exact text, recurring-ical-events over the mirror's copy (a client expanding it itself), and
Radicale's own time-range walk over the copy (a client's calendar-query on the mirror)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from calmirror import compat, compat_series
from calmirror.availability import engine as av
from calmirror.ical_lines import unfold
from calmirror.local.items import Limits, PreparedItem, prepare_one
from calmirror.plan import MirrorPolicy, mirror_write
from tests.radicale_view import radicale_starts

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
RULES = av.Rules(tz=BERLIN)
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
POLICY = MirrorPolicy(source="cal", horizon=compat.horizon_for(dt.date(2026, 12, 7)))


def resource(*vevents: list[str]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Apple Inc.//macOS 15.3.2//EN"]
    for lines_of_one in vevents:
        lines += ["BEGIN:VEVENT", "DTSTAMP:20261101T120000Z", *lines_of_one, "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def engine_starts(text: str) -> list[dt.datetime]:
    found = av.busy_occurrences([av.Source("s", [av.parse_calendar(text)])], *WINDOW, RULES)
    return [o.start for o in found]


def library_starts(text: str) -> list[dt.datetime]:
    """A client that expands what it reads itself (recurring-ical-events)."""
    found = recurring_ical_events.of(icalendar.Calendar.from_ical(text)).between(*WINDOW)
    return sorted(_utc(e["DTSTART"].dt) for e in found)


def _utc(value: dt.datetime) -> dt.datetime:
    return (value if value.tzinfo else value.replace(tzinfo=BERLIN)).astimezone(UTC)


def client_copy(text: str) -> str:
    _, copy, made = mirror_write(text, "x.ics", POLICY)
    assert made is not None, "no compatible copy made"
    assert isinstance(prepare_one("x.ics", copy, Limits()), PreparedItem)
    return unfold(copy)


def test_a_date_until_on_a_timed_rule_counts_the_whole_last_day_for_every_reader() -> None:
    text = resource(
        [
            "UID:until-date",
            "DTSTART;TZID=Europe/Berlin:20261210T100000",
            "DTEND;TZID=Europe/Berlin:20261210T110000",
            "RRULE:FREQ=DAILY;BYHOUR=10,18;UNTIL=20261212",  # 18:00 is after DTSTART's time of day
            "SUMMARY:Standup",
        ]
    )
    last_day = [dt.datetime(2026, 12, 12, 9, tzinfo=UTC), dt.datetime(2026, 12, 12, 17, tzinfo=UTC)]
    want = [dt.datetime(2026, 12, d, h, tzinfo=UTC) for d in (10, 11) for h in (9, 17)] + last_day
    assert engine_starts(text) == want
    copy = client_copy(text)
    assert "UNTIL=20261212T225959Z" in copy and compat_series.DATE_UNTIL in copy
    assert library_starts(copy) == want
    assert radicale_starts(copy, WINDOW) == want
    assert radicale_starts(text, WINDOW) != want  # (Radicale's own reading of the exact text stops at 10:00)


def test_a_floating_rule_with_a_date_until_ends_at_the_last_second_of_that_day() -> None:
    text = resource(
        ["UID:until-floating", "DTSTART:20261210T200000", "DURATION:PT1H", "RRULE:FREQ=DAILY;UNTIL=20261211"]
    )
    assert engine_starts(text) == [dt.datetime(2026, 12, d, 19, tzinfo=UTC) for d in (10, 11)]
    copy = client_copy(text)
    assert "UNTIL=20261211T235959\r\n" in copy
    assert library_starts(copy) == engine_starts(text)


def test_an_all_day_rule_with_a_date_until_is_left_as_it_is() -> None:
    text = resource(
        [
            "UID:until-allday",
            "DTSTART;VALUE=DATE:20261210",
            "DTEND;VALUE=DATE:20261211",
            "RRULE:FREQ=DAILY;UNTIL=20261212",
        ]
    )
    assert not compat_series.needs_series_fixes(text)
    assert mirror_write(text, "x.ics", POLICY)[2] is None


def test_an_override_of_an_exdated_occurrence_counts_and_every_reader_of_the_copy_sees_it() -> None:
    text = resource(
        [
            "UID:moved",
            "DTSTART;TZID=Europe/Berlin:20261210T100000",
            "DTEND;TZID=Europe/Berlin:20261210T110000",
            "RRULE:FREQ=DAILY;COUNT=5",
            "EXDATE;TZID=Europe/Berlin:20261211T100000,20261212T100000",  # the 12th is also overridden
            "EXDATE:20261213T090000Z",  # in UTC, and overridden too
            "SUMMARY:Review",
        ],
        [
            "UID:moved",
            "RECURRENCE-ID;TZID=Europe/Berlin:20261212T100000",
            "DTSTART;TZID=Europe/Berlin:20261212T150000",
            "DTEND;TZID=Europe/Berlin:20261212T160000",
            "SUMMARY:Review (moved)",
        ],
        [
            "UID:moved",
            "RECURRENCE-ID;TZID=Europe/Berlin:20261213T100000",
            "DTSTART;TZID=Europe/Berlin:20261213T080000",
            "DTEND;TZID=Europe/Berlin:20261213T090000",
            "SUMMARY:Review (early)",
        ],
    )
    want = [
        dt.datetime(2026, 12, 10, 9, tzinfo=UTC),
        dt.datetime(2026, 12, 12, 14, tzinfo=UTC),  # the overrides: busy, not dropped with the EXDATE
        dt.datetime(2026, 12, 13, 7, tzinfo=UTC),
        dt.datetime(2026, 12, 14, 9, tzinfo=UTC),
    ]
    assert engine_starts(text) == want
    copy = client_copy(text)
    assert "EXDATE;TZID=Europe/Berlin:20261211T100000\r\n" in copy  # the 11th stays removed
    assert "20261212T100000," not in copy and "EXDATE:20261213T090000Z" not in copy
    assert library_starts(copy) == want
    assert radicale_starts(copy, WINDOW) == want
    assert library_starts(text) != want  # (the library alone drops them with the exact text)


def test_a_this_and_future_override_moves_every_later_occurrence_for_clients_too() -> None:
    """Radicale reads RANGE=THISANDFUTURE as one override; the copy writes one override per
    later occurrence up to the horizon, each as the range's override says."""
    text = resource(
        ["UID:taf", "DTSTART;TZID=Europe/Berlin:20261210T100000", "DURATION:PT1H", "RRULE:FREQ=DAILY"],
        [
            "UID:taf",
            "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20261215T100000",
            "DTSTART;TZID=Europe/Berlin:20261215T143000",
            "DTEND;TZID=Europe/Berlin:20261215T150000",
            "SUMMARY:Shorter, in the afternoon",
        ],
        [
            "UID:taf",
            "RECURRENCE-ID;TZID=Europe/Berlin:20261220T100000",
            "DTSTART;TZID=Europe/Berlin:20261220T080000",
            "DTEND;TZID=Europe/Berlin:20261220T083000",
        ],
    )
    want = [dt.datetime(2026, 12, d, 9, tzinfo=UTC) for d in range(10, 15)]
    want += [dt.datetime(2026, 12, d, 13, 30, tzinfo=UTC) for d in range(15, 32) if d != 20]
    want.insert(10, dt.datetime(2026, 12, 20, 7, tzinfo=UTC))  # its own override stays its own
    assert engine_starts(text) == want
    copy = client_copy(text)
    assert compat_series.THIS_AND_FUTURE in copy and "THISANDFUTURE" not in copy.replace(
        compat_series.THIS_AND_FUTURE, ""
    )
    assert radicale_starts(copy, WINDOW) == want
    assert library_starts(copy) == want
    for year in (2027, 2030):  # busy time of the copy is the exact text's, years on
        window = (dt.datetime(year, 6, 1, tzinfo=UTC), dt.datetime(year, 6, 15, tzinfo=UTC))
        source = [av.Source("s", [av.parse_calendar(t)]) for t in (copy, text)]
        assert av.busy_intervals(source[:1], *window, RULES) == av.busy_intervals(source[1:], *window, RULES) != []


def test_an_exrule_is_dropped_from_the_copy_as_busy_time_does_not_read_it() -> None:
    text = resource(
        [
            "UID:exrule",
            "DTSTART:20261210T100000Z",
            "DURATION:PT1H",
            "RRULE:FREQ=DAILY;COUNT=4",
            "EXRULE:FREQ=DAILY;INTERVAL=2;COUNT=2",
        ]
    )
    want = [dt.datetime(2026, 12, d, 10, tzinfo=UTC) for d in range(10, 14)]
    assert engine_starts(text) == want  # erring towards busy
    copy = client_copy(text)
    assert "EXRULE" not in copy.replace(compat_series.EXRULES, "")
    assert radicale_starts(copy, WINDOW) == want and radicale_starts(text, WINDOW) != want


def test_a_byte_order_mark_radicale_refuses_is_dropped_from_the_copy() -> None:
    text = "\ufeff" + resource(["UID:bom", "DTSTART:20261210T100000Z", "DURATION:PT1H"])
    refused = prepare_one("x.ics", text, Limits())
    assert isinstance(refused, str)
    _, copy, made = mirror_write(text, "x.ics", POLICY, refused=refused)
    assert made is not None and made.reasons == (compat.BOM,)
    assert isinstance(prepare_one("x.ics", copy, Limits()), PreparedItem)
    assert radicale_starts(copy, WINDOW) == engine_starts(text) == [dt.datetime(2026, 12, 10, 10, tzinfo=UTC)]


def test_a_rule_that_never_matches_keeps_its_dtstart_for_clients() -> None:
    """RFC 5545: DTSTART is an occurrence even where the rule produces none (busy time counts
    it); Radicale showed nothing of such an event, so the copy adds DTSTART as an RDATE."""
    text = resource(
        [
            "UID:leap",
            "DTSTART;TZID=Europe/Berlin:20261208T100000",
            "DURATION:PT1H",
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "SUMMARY:Never again",
        ]
    )
    want = [dt.datetime(2026, 12, 8, 9, tzinfo=UTC)]
    assert engine_starts(text) == want
    assert radicale_starts(text, WINDOW) == []  # (Radicale's own reading of the exact text)
    copy = client_copy(text)
    assert "RDATE;TZID=Europe/Berlin:20261208T100000" in copy
    assert radicale_starts(copy, WINDOW) == want
    assert library_starts(copy) == want  # once, not twice
    weekly = text.replace("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=WEEKLY;BYDAY=MO")
    assert not compat_series.needs_series_fixes(weekly)  # (vobject adds a DTSTART the rule skips)
