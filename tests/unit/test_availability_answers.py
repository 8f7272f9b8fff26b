"""The engine's answers beyond busy time itself, on small hand-written events: the guard's
overlaps, the free-busy reply, and the memos that many windows over one corpus share (the
rules themselves are test_availability_rules')."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av
from tests.unit.test_availability_rules import ME, ONE_HOUR, THE_HOUR, ics, iv, z

# --- the guard and the free-busy answer ----------------------------------------------------------------


def _sources(*events: str) -> list[av.Source]:
    return [av.Source("s", [av.parse_calendar(ics(*events))])]


def test_overlaps_reports_the_collision_of_a_new_event() -> None:
    rules = av.Rules(ZoneInfo("UTC"), ME)
    candidate = av.parse_calendar(ics("UID:new\nDTSTART:20261207T103000Z\nDTEND:20261207T120000Z"))
    assert av.overlaps(candidate, _sources(ONE_HOUR), rules) == [iv("2026-12-07 10:30", "2026-12-07 11:00")]
    free = av.parse_calendar(ics("UID:new\nDTSTART:20261207T110000Z\nDTEND:20261207T120000Z"))
    assert av.overlaps(free, _sources(ONE_HOUR), rules) == []  # back to back is not a collision


def test_overlaps_ignores_the_candidates_own_stored_copy() -> None:
    rules = av.Rules(ZoneInfo("UTC"), ME)
    candidate = av.parse_calendar(ics(f"UID:same\n{ONE_HOUR}"))
    assert av.overlaps(candidate, _sources(f"UID:same\n{ONE_HOUR}"), rules) == []


def test_overlaps_of_a_transparent_candidate_is_empty() -> None:
    rules = av.Rules(ZoneInfo("UTC"), ME)
    candidate = av.parse_calendar(ics(f"UID:new\n{ONE_HOUR}\nTRANSP:TRANSPARENT"))
    assert av.overlaps(candidate, _sources(ONE_HOUR), rules) == []


def test_overlaps_of_an_open_ended_recurring_candidate() -> None:
    rules = av.Rules(ZoneInfo("UTC"), ME)
    daily = "UID:new\nDTSTART:20261130T100000Z\nDTEND:20261130T103000Z\nRRULE:FREQ=DAILY"
    candidate = av.parse_calendar(ics(daily))
    far = "DTSTART:20270615T100000Z\nDTEND:20270615T110000Z"
    assert av.overlaps(candidate, _sources(ONE_HOUR, far), rules) == [
        iv("2026-12-07 10:00", "2026-12-07 10:30"),
        iv("2027-06-15 10:00", "2027-06-15 10:30"),
    ]


def test_to_vfreebusy_is_an_rfc5545_reply() -> None:
    text = av.to_vfreebusy(
        [
            iv("2026-12-07 10:00", "2026-12-07 11:00"),
            iv("2026-12-07 10:30", "2026-12-07 12:00"),
            (z("2026-12-07 13:00"), z("2026-12-07 13:00") + dt.timedelta(microseconds=1)),
        ],
        z("2026-12-07 00:00"),
        z("2026-12-08 00:00"),
        dtstamp=z("2026-11-30 12:00"),
    )
    assert text == (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror//availability//EN\r\n"
        "BEGIN:VFREEBUSY\r\nDTSTAMP:20261130T120000Z\r\n"
        "DTSTART:20261207T000000Z\r\nDTEND:20261208T000000Z\r\n"
        "FREEBUSY;FBTYPE=BUSY:20261207T100000Z/20261207T120000Z\r\n"
        "FREEBUSY;FBTYPE=BUSY:20261207T130000Z/20261207T130001Z\r\n"  # rounded outwards, never lost
        "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
    )
    import icalendar

    parsed = icalendar.Calendar.from_ical(text)
    assert len(parsed.walk("VFREEBUSY")) == 1


# --- memos ------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_concurrent_queries_agree() -> None:
    """Guard and free-busy threads share memos and the library's rule objects."""
    from concurrent.futures import ThreadPoolExecutor

    events = [
        f"UID:w{n}\nDTSTART:2026120{n % 7 + 1}T{8 + n % 9:02d}0000Z\n"
        f"DTEND:2026120{n % 7 + 1}T{9 + n % 9:02d}0000Z\nRRULE:FREQ=WEEKLY;INTERVAL={1 + n % 3}"
        for n in range(40)
    ]
    sources = [av.Source("s", [av.parse_calendar(ics(e)) for e in events])]
    rules = av.Rules(ZoneInfo("Europe/Berlin"))
    windows = [
        (z("2026-12-01 00:00") + dt.timedelta(days=13 * k), z("2026-12-31 00:00") + dt.timedelta(days=13 * k))
        for k in range(24)
    ]
    av.clear_cache()
    serial = [av.busy_intervals(sources, *w, rules) for w in windows * 3]
    for _ in range(8):  # the dateutil lock race needs a few rounds to show (it did, as a hang)
        av.clear_cache()
        with ThreadPoolExecutor(8) as pool:
            parallel = list(pool.map(lambda w: av.busy_intervals(sources, *w, rules), windows * 3))
        assert parallel == serial


def test_a_new_parse_of_a_changed_resource_is_seen() -> None:
    rules = av.Rules(ZoneInfo("UTC"))
    old = [av.Source("s", [av.parse_calendar(ics(ONE_HOUR))])]
    new = [av.Source("s", [av.parse_calendar(ics("DTSTART:20261207T120000Z\nDTEND:20261207T130000Z"))])]
    window = (z("2026-12-07 00:00"), z("2026-12-08 00:00"))
    assert av.busy_intervals(old, *window, rules) == THE_HOUR
    assert av.busy_intervals(new, *window, rules) == [iv("2026-12-07 12:00", "2026-12-07 13:00")]


def test_guard_candidates_do_not_push_real_sources_out_of_the_memo() -> None:
    from calmirror.availability import index as busy_index

    av.clear_cache()
    rules = av.Rules(ZoneInfo("UTC"), ME)
    sources = _sources(ONE_HOUR)
    av.busy_intervals(sources, z("2026-12-01 00:00"), z("2026-12-31 00:00"), rules)
    remembered = dict(busy_index._indexes)
    for n in range(2 * busy_index.INDEXES_KEPT):
        candidate = av.parse_calendar(ics(f"UID:c{n}\nDTSTART:20261207T1030{n % 60:02d}Z\nDTEND:20261207T113000Z"))
        assert av.overlaps(candidate, sources, rules)
    assert set(remembered) <= set(busy_index._indexes)


def test_to_vfreebusy_reports_tentative_time_where_no_busy_time_covers_it() -> None:
    text = av.to_vfreebusy(
        [iv("2026-12-07 10:00", "2026-12-07 11:00")],
        z("2026-12-07 00:00"),
        z("2026-12-08 00:00"),
        dtstamp=z("2026-11-30 12:00"),
        tentative=[iv("2026-12-07 09:00", "2026-12-07 12:00"), iv("2026-12-07 10:15", "2026-12-07 10:45")],
    )
    assert [line for line in text.split("\r\n") if line.startswith("FREEBUSY")] == [
        "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20261207T090000Z/20261207T100000Z",
        "FREEBUSY;FBTYPE=BUSY:20261207T100000Z/20261207T110000Z",  # both: BUSY wins for that stretch
        "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20261207T110000Z/20261207T120000Z",
    ]
