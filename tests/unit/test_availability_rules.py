"""Each availability rule on small hand-written events, with hand-written expectations."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av
from calmirror.testing import ical

UTC = dt.UTC
ME = frozenset({"me@example.com"})
BERLIN_TZ = "\n".join(ical.VTIMEZONES["Europe/Berlin"])


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iv(a: str, b: str) -> tuple[dt.datetime, dt.datetime]:
    return z(a), z(b)


def ics(*events: str, head: str = "") -> str:
    """A VCALENDAR around VEVENT bodies (UID defaults to 'e<n>'), CRLF as servers send it."""
    vevents = []
    for n, body in enumerate(events):
        body = body.strip()
        uid = [] if "UID:" in body else [f"UID:e{n}"]
        vevents.append([*uid, "DTSTAMP:20260101T000000Z", *body.split("\n")])
    head = head.strip()
    return ical.vcalendar(*vevents, head=head.split("\n") if head else (), prodid="-//test//EN")


def busy(
    *events: str,
    head: str = "",
    window: tuple[str, str] = ("2026-12-01 00:00", "2027-01-01 00:00"),
    tz: str = "UTC",
    allday_busy: bool = True,
    exclude: frozenset[str] = frozenset(),
    **rules: object,
) -> list[tuple[dt.datetime, dt.datetime]]:
    src = av.Source("s", [av.parse_calendar(ics(*events, head=head))], allday_busy, exclude)
    options: dict[str, object] = {"me": ME, **rules}
    return av.busy_intervals([src], z(window[0]), z(window[1]), av.Rules(ZoneInfo(tz), **options))  # type: ignore[arg-type]


ONE_HOUR = "DTSTART:20261207T100000Z\nDTEND:20261207T110000Z"
THE_HOUR = [iv("2026-12-07 10:00", "2026-12-07 11:00")]


# --- what makes an occurrence busy ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", THE_HOUR),
        ("TRANSP:OPAQUE", THE_HOUR),
        ("TRANSP:TRANSPARENT", []),
        ("TRANSP:transparent", []),
        ("STATUS:CONFIRMED", THE_HOUR),
        ("STATUS:CANCELLED", []),
        ("STATUS:TENTATIVE", THE_HOUR),
        ("X-MICROSOFT-CDO-BUSYSTATUS:FREE", []),
        ("X-MICROSOFT-CDO-BUSYSTATUS:OOF", THE_HOUR),
        ("X-MICROSOFT-CDO-BUSYSTATUS:BUSY", THE_HOUR),
    ],
)
def test_transp_status_and_outlook_busystatus(extra: str, expected: list[object]) -> None:
    assert busy(f"{ONE_HOUR}\n{extra}") == expected


def test_tentative_is_configurable() -> None:
    for extra in (
        "STATUS:TENTATIVE",
        "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE",
        "ATTENDEE;PARTSTAT=TENTATIVE:mailto:me@example.com",
    ):
        assert busy(f"{ONE_HOUR}\n{extra}") == THE_HOUR
        assert busy(f"{ONE_HOUR}\n{extra}", tentative_busy=False) == []


@pytest.mark.parametrize(
    ("attendees", "expected"),
    [
        ("ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com", []),
        ("ATTENDEE;PARTSTAT=DECLINED:MAILTO:ME@EXAMPLE.COM", []),
        # Apple writes the address in EMAIL= and an opaque value
        ('ATTENDEE;EMAIL="me@example.com";PARTSTAT=DECLINED:urn:uuid:6f1c0a', []),
        ("ATTENDEE;PARTSTAT=DECLINED:mailto:someone@example.com", THE_HOUR),
        ("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:me@example.com", THE_HOUR),
        ("ATTENDEE:mailto:me@example.com", THE_HOUR),  # PARTSTAT defaults to NEEDS-ACTION
        ("ATTENDEE;PARTSTAT=ACCEPTED:mailto:me@example.com", THE_HOUR),
        # invited twice (Apple ID and alias): an acceptance on either keeps the time busy
        (
            "ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com\nATTENDEE;PARTSTAT=ACCEPTED:mailto:me@alias.example",
            THE_HOUR,
        ),
        ("ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com\nATTENDEE;PARTSTAT=DECLINED:mailto:me@alias.example", []),
    ],
)
def test_only_the_users_own_decline_frees_time(attendees: str, expected: list[object]) -> None:
    me = frozenset({"me@example.com", "me@alias.example"})
    assert busy(f"{ONE_HOUR}\n{attendees}", me=me) == expected


def test_decline_needs_to_know_who_the_user_is() -> None:
    declined = f"{ONE_HOUR}\nATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com"
    assert busy(declined, me=frozenset()) == THE_HOUR


# --- event shapes ---------------------------------------------------------------------------------


def test_zero_length_and_missing_end_contribute_nothing() -> None:
    assert busy("DTSTART:20261207T100000Z\nDTEND:20261207T100000Z") == []
    assert busy("DTSTART:20261207T100000Z") == []  # RFC 5545: a timed DTSTART alone is a point


def test_duration_without_dtend() -> None:
    assert busy("DTSTART:20261207T100000Z\nDURATION:PT1H30M") == [iv("2026-12-07 10:00", "2026-12-07 11:30")]


def test_all_day_shapes() -> None:
    day = [iv("2026-12-07 00:00", "2026-12-08 00:00")]
    assert busy("DTSTART;VALUE=DATE:20261207") == day  # date DTSTART alone lasts one day
    assert busy("DTSTART;VALUE=DATE:20261207\nDTEND;VALUE=DATE:20261208") == day
    assert busy("DTSTART;VALUE=DATE:20261207\nDURATION:P2D") == [iv("2026-12-07 00:00", "2026-12-09 00:00")]
    assert busy("DTSTART;VALUE=DATE:20261207\nDTEND;VALUE=DATE:20261210") == [
        iv("2026-12-07 00:00", "2026-12-10 00:00")  # DTEND exclusive: three days
    ]
    kolkata = [iv("2026-12-06 18:30", "2026-12-07 18:30")]
    assert busy("DTSTART;VALUE=DATE:20261207", tz="Asia/Kolkata") == kolkata
    assert busy("DTSTART;VALUE=DATE:20261207", allday_busy=False) == []


def test_floating_and_all_day_across_a_dst_change_in_the_configured_zone() -> None:
    window = ("2027-03-26 00:00", "2027-03-30 00:00")
    floating = "DTSTART:20270326T093000\nDTEND:20270326T100000\nRRULE:FREQ=DAILY;COUNT=3"
    assert busy(floating, window=window, tz="Europe/Berlin") == [
        iv("2027-03-26 08:30", "2027-03-26 09:00"),
        iv("2027-03-27 08:30", "2027-03-27 09:00"),
        iv("2027-03-28 07:30", "2027-03-28 08:00"),  # CEST from 28 March
    ]
    allday = "DTSTART;VALUE=DATE:20270327\nRRULE:FREQ=DAILY;COUNT=2"
    assert busy(allday, window=window, tz="Europe/Berlin") == [
        iv("2027-03-26 23:00", "2027-03-28 22:00")  # 27 March 00:00 CET .. 29 March 00:00 CEST, merged
    ]


def test_x_wr_timezone_calendars_are_read_in_their_zone() -> None:
    head = "X-WR-TIMEZONE:America/New_York"
    floating = "DTSTART:20261207T100000\nDTEND:20261207T110000"
    assert busy(floating, head=head, tz="Europe/Berlin") == [iv("2026-12-07 15:00", "2026-12-07 16:00")]


def test_custom_tzid_is_resolved_from_its_own_vtimezone() -> None:
    head = """BEGIN:VTIMEZONE
TZID:Kanzlei Zeit (GMT+03:00)
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
TZNAME:KZT
END:STANDARD
END:VTIMEZONE"""
    event = (
        'DTSTART;TZID="Kanzlei Zeit (GMT+03:00)":20261207T100000\n'
        'DTEND;TZID="Kanzlei Zeit (GMT+03:00)":20261207T110000\n'
        "RRULE:FREQ=WEEKLY;COUNT=2"
    )
    assert busy(event, head=head) == [
        iv("2026-12-07 07:00", "2026-12-07 08:00"),
        iv("2026-12-14 07:00", "2026-12-14 08:00"),
    ]


def test_windows_zone_names_resolve() -> None:
    event = "DTSTART;TZID=W. Europe Standard Time:20261207T100000\nDTEND;TZID=W. Europe Standard Time:20261207T110000"
    assert busy(event) == [iv("2026-12-07 09:00", "2026-12-07 10:00")]


# --- recurrence --------------------------------------------------------------------------------------


def test_bysetpos_last_workday_of_the_month() -> None:
    event = "DTSTART:20261030T150000Z\nDTEND:20261030T160000Z\nRRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"
    assert busy(event, window=("2026-11-01 00:00", "2027-02-01 00:00")) == [
        iv("2026-11-30 15:00", "2026-11-30 16:00"),  # Monday
        iv("2026-12-31 15:00", "2026-12-31 16:00"),  # Thursday
        iv("2027-01-29 15:00", "2027-01-29 16:00"),  # Friday (31st is a Sunday)
    ]


def test_rdate_period_and_exdate_in_another_zones_form() -> None:
    event = """DTSTART;TZID=Europe/Berlin:20261207T100000
DTEND;TZID=Europe/Berlin:20261207T110000
RRULE:FREQ=DAILY;COUNT=3
EXDATE;TZID=Asia/Tokyo:20261208T180000
RDATE;VALUE=PERIOD:20261220T120000Z/PT3H"""
    assert busy(event, head=BERLIN_TZ) == [
        iv("2026-12-07 09:00", "2026-12-07 10:00"),
        # 2026-12-08 10:00 Berlin is 18:00 Tokyo: excluded
        iv("2026-12-09 09:00", "2026-12-09 10:00"),
        iv("2026-12-20 12:00", "2026-12-20 15:00"),  # the RDATE brings its own length
    ]


def test_exdate_on_an_all_day_series() -> None:
    event = "UID:a\nDTSTART;VALUE=DATE:20261207\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE;VALUE=DATE:20261208"
    assert busy(event) == [iv("2026-12-07 00:00", "2026-12-08 00:00"), iv("2026-12-09 00:00", "2026-12-10 00:00")]


SERIES = "UID:s\nDTSTART:20261201T100000Z\nDTEND:20261201T110000Z\nRRULE:FREQ=WEEKLY;COUNT=5"


def test_overrides_move_cancel_free_and_decline_single_instances() -> None:
    moved = "UID:s\nRECURRENCE-ID:20261208T100000Z\nDTSTART:20261209T150000Z\nDTEND:20261209T160000Z"
    cancelled = (
        "UID:s\nRECURRENCE-ID:20261215T100000Z\nDTSTART:20261215T100000Z\nDTEND:20261215T110000Z\nSTATUS:CANCELLED"
    )
    freed = (
        "UID:s\nRECURRENCE-ID:20261222T100000Z\nDTSTART:20261222T100000Z\nDTEND:20261222T110000Z\nTRANSP:TRANSPARENT"
    )
    declined = (
        "UID:s\nRECURRENCE-ID:20261229T100000Z\nDTSTART:20261229T100000Z\nDTEND:20261229T110000Z\n"
        "ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com"
    )
    assert busy(SERIES, moved, cancelled, freed, declined) == [
        iv("2026-12-01 10:00", "2026-12-01 11:00"),
        iv("2026-12-09 15:00", "2026-12-09 16:00"),
    ]


def test_override_moved_into_and_out_of_the_window() -> None:
    into = "UID:s\nRECURRENCE-ID:20261229T100000Z\nDTSTART:20261130T100000Z\nDTEND:20261130T110000Z"
    window = ("2026-11-30 00:00", "2026-12-02 00:00")
    assert busy(SERIES, into, window=window) == [
        iv("2026-11-30 10:00", "2026-11-30 11:00"),
        iv("2026-12-01 10:00", "2026-12-01 11:00"),
    ]
    out = "UID:s\nRECURRENCE-ID:20261201T100000Z\nDTSTART:20270301T100000Z\nDTEND:20270301T110000Z"
    assert busy(SERIES, out, window=window) == []


def test_this_and_future_override_moves_the_rest_of_the_series() -> None:
    later = (
        "UID:s\nRECURRENCE-ID;RANGE=THISANDFUTURE:20261215T100000Z\nDTSTART:20261215T140000Z\nDTEND:20261215T150000Z"
    )
    assert busy(SERIES, later) == [
        iv("2026-12-01 10:00", "2026-12-01 11:00"),
        iv("2026-12-08 10:00", "2026-12-08 11:00"),
        iv("2026-12-15 14:00", "2026-12-15 15:00"),
        iv("2026-12-22 14:00", "2026-12-22 15:00"),
        iv("2026-12-29 14:00", "2026-12-29 15:00"),
    ]


def test_override_without_its_master_still_counts() -> None:
    lone = "UID:s\nRECURRENCE-ID:20261208T100000Z\nDTSTART:20261208T120000Z\nDTEND:20261208T130000Z"
    assert busy(lone) == [iv("2026-12-08 12:00", "2026-12-08 13:00")]


def test_old_open_ended_series_is_fast_forwarded_exactly() -> None:
    daily = "DTSTART;TZID=Europe/Berlin:19950102T083000\nDTEND;TZID=Europe/Berlin:19950102T090000\nRRULE:FREQ=DAILY"
    got = busy(daily, head=BERLIN_TZ, window=("2026-12-01 00:00", "2026-12-04 00:00"))
    assert got == [iv(f"2026-12-0{d} 07:30", f"2026-12-0{d} 08:00") for d in (1, 2, 3)]
    weekly = (
        "DTSTART;TZID=Europe/Berlin:19900105T170000\nDTEND;TZID=Europe/Berlin:19900105T180000\n"
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;WKST=MO"
    )
    # 2026-12-04 is 1990-01-05 + 1926 weeks (even), so the fortnightly Fridays are 4 and 18
    assert busy(weekly, head=BERLIN_TZ) == [
        iv("2026-12-04 16:00", "2026-12-04 17:00"),
        iv("2026-12-18 16:00", "2026-12-18 17:00"),
    ]


def test_old_count_rule_with_filters_uses_checkpoints() -> None:
    # Mondays and Wednesdays from Mon 2000-01-03; COUNT=1400 runs out after 700 weeks, i.e.
    # the last occurrence is Wed 2013-05-29 (2000-01-03 + 699 weeks + 2 days).
    rule = "DTSTART:20000103T090000Z\nDTEND:20000103T100000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=1400"
    assert busy(rule, window=("2013-05-26 00:00", "2013-06-10 00:00")) == [
        iv("2013-05-27 09:00", "2013-05-27 10:00"),
        iv("2013-05-29 09:00", "2013-05-29 10:00"),
    ]
    assert busy(rule) == []  # long over by December 2026


def test_excluded_uids_are_ignored() -> None:
    assert busy(f"UID:mine\n{ONE_HOUR}", exclude=frozenset({"mine"})) == []
    assert busy(f"UID:mine\n{ONE_HOUR}", exclude=frozenset({"other"})) == THE_HOUR


# --- bounded expansion -----------------------------------------------------------------------------


def _timed(*events: str, **kw: object) -> tuple[list[tuple[dt.datetime, dt.datetime]], float]:
    started = time.perf_counter()
    result = busy(*events, **kw)  # type: ignore[arg-type]
    return result, time.perf_counter() - started


@pytest.mark.parametrize("start", ["20261215T090000Z", "19900101T090000Z"])
def test_secondly_with_a_billion_count_is_capped_and_conservative(start: str) -> None:
    end = start[:-2] + "1Z"  # one second long
    result, took = _timed(f"DTSTART:{start}\nDTEND:{end}\nRRULE:FREQ=SECONDLY")
    first = "2026-12-15 09:00" if start.startswith("2026") else "2026-12-01 00:00"
    assert result == [iv(first, "2027-01-01 00:00")]
    assert took < 3
    counted, took = _timed(f"DTSTART:{start}\nDTEND:{end}\nRRULE:FREQ=SECONDLY;COUNT=1000000000")
    # from 1990 a billion seconds end in 2021; from 2026 they outlast the window
    assert counted == (result if start.startswith("2026") else [])
    assert took < 3


def test_capped_rest_is_marked_approximate() -> None:
    cal = av.parse_calendar(ics("DTSTART:20261215T090000Z\nDTEND:20261215T090001Z\nRRULE:FREQ=SECONDLY"))
    found = av.busy_occurrences(
        [av.Source("s", [cal])], z("2026-12-15 00:00"), z("2026-12-16 00:00"), av.Rules(ZoneInfo("UTC"))
    )
    assert found[-1].approximate and found[-1].end == z("2026-12-16 00:00")
    assert not any(o.approximate for o in found[:-1])


def test_dense_zero_length_rule_blocks_nothing() -> None:
    result, took = _timed("DTSTART:20261215T090000Z\nRRULE:FREQ=SECONDLY")
    assert result == [] and took < 3


def test_filtered_subdaily_rule_is_exact_and_fast() -> None:
    rule = "DTSTART:20200101T090000Z\nDTEND:20200101T090100Z\nRRULE:FREQ=MINUTELY;BYHOUR=9"
    result, took = _timed(rule, window=("2026-12-01 00:00", "2026-12-03 00:00"))
    assert result == [iv("2026-12-01 09:00", "2026-12-01 10:00"), iv("2026-12-02 09:00", "2026-12-02 10:00")]
    assert took < 2


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("DAILY", [iv("2026-12-01 09:00", "2026-12-01 10:00"), iv("2026-12-02 09:00", "2026-12-02 10:00")]),
        ("MONTHLY;BYMONTHDAY=1", [iv("2026-12-01 09:00", "2026-12-01 10:00")]),
        ("YEARLY;BYMONTH=12;BYMONTHDAY=2", [iv("2026-12-02 09:00", "2026-12-02 10:00")]),
    ],
)
def test_count_beyond_the_datetime_range(freq: str, expected: list[object]) -> None:
    event = f"DTSTART:19900101T090000Z\nDTEND:19900101T100000Z\nRRULE:FREQ={freq};COUNT=1000000000"
    result, took = _timed(event, window=("2026-12-01 00:00", "2026-12-03 00:00"))
    assert result == expected and took < 2


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # 30 February
        "FREQ=SECONDLY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=DAILY;INTERVAL=7;BYDAY=FR",  # started on a Tuesday: the lattice never meets Friday
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6",
        "FREQ=DAILY;BYHOUR=9;BYSETPOS=2",
    ],
)
def test_rules_that_never_match_leave_only_dtstart_and_do_not_hang(rule: str) -> None:
    result, took = _timed(f"DTSTART:20261215T090000Z\nDTEND:20261215T100000Z\nRRULE:{rule}")
    assert result == [iv("2026-12-15 09:00", "2026-12-15 10:00")]
    assert took < 2


# --- malformed input --------------------------------------------------------------------------------


def test_a_malformed_event_is_skipped_and_reported_the_rest_kept() -> None:
    text = ics(
        "UID:bad\nDTSTART:not-a-date\nDTEND:20261207T110000Z",
        f"UID:good\n{ONE_HOUR}",
        "UID:badrule\nDTSTART:20261208T100000Z\nDTEND:20261208T110000Z\nRRULE:FREQ=MINUTELY;BYHOUR=25",
        "UID:nostart\nSUMMARY:no DTSTART at all",
    )
    src = [av.Source("s", [av.parse_calendar(text)])]
    rules = av.Rules(ZoneInfo("UTC"))
    assert av.busy_intervals(src, z("2026-12-01 00:00"), z("2027-01-01 00:00"), rules) == THE_HOUR
    reported = av.skipped(src, z("2026-12-01 00:00"), z("2027-01-01 00:00"), rules)
    assert {s.uid for s in reported} == {"bad", "badrule", "nostart"}
    assert all(s.source == "s" and s.reason and "\n" not in s.reason for s in reported)


def test_non_gregorian_calendar_is_reported_not_misread() -> None:
    text = ics(ONE_HOUR, head="CALSCALE:CHINESE")
    src = [av.Source("s", [av.parse_calendar(text)])]
    rules = av.Rules(ZoneInfo("UTC"))
    assert av.busy_intervals(src, z("2026-12-01 00:00"), z("2027-01-01 00:00"), rules) == []
    reported = av.skipped(src, z("2026-12-01 00:00"), z("2027-01-01 00:00"), rules)
    assert reported[0].reason == "non-Gregorian CALSCALE"


@pytest.mark.parametrize(
    "text",
    [b"", b"   ", b"hello", b"\xff\xfe\x00", b"BEGIN:VEVENT\r\nEND:VEVENT\r\n", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"],
)
def test_parse_calendar_refuses_junk_with_a_short_value_error(text: bytes) -> None:
    with pytest.raises(ValueError) as error:
        av.parse_calendar(text)
    assert isinstance(error.value, av.CalendarParseError)
    assert len(str(error.value)) < 200 and "\n" not in str(error.value)


def test_parse_calendar_accepts_a_byte_order_mark_and_lf_endings() -> None:
    text = ics(ONE_HOUR).replace("\r\n", "\n")
    calendar = av.parse_calendar(b"\xef\xbb\xbf" + text.encode())
    src = [av.Source("s", [calendar])]
    assert av.busy_intervals(src, z("2026-12-07 00:00"), z("2026-12-08 00:00"), av.Rules(ZoneInfo("UTC"))) == THE_HOUR


def test_window_must_be_aware_and_non_empty() -> None:
    src = [av.Source("s", [av.parse_calendar(ics(ONE_HOUR))])]
    rules = av.Rules(ZoneInfo("UTC"))
    with pytest.raises(ValueError):
        av.busy_intervals(src, dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 2), rules)
    with pytest.raises(ValueError):
        av.busy_intervals(src, z("2026-12-02 00:00"), z("2026-12-01 00:00"), rules)


def test_windows_in_other_zones_mean_the_same_instants() -> None:
    src = [av.Source("s", [av.parse_calendar(ics(ONE_HOUR))])]
    berlin = ZoneInfo("Europe/Berlin")
    got = av.busy_intervals(
        src,
        dt.datetime(2026, 12, 7, 11, 30, tzinfo=berlin),
        dt.datetime(2026, 12, 7, 12, 0, tzinfo=berlin),
        av.Rules(berlin),
    )
    assert got == [iv("2026-12-07 10:30", "2026-12-07 11:00")]
    assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in got)
