"""A rule too frequent for Radicale's occurrence limit, with a real end before the horizon:
the compatible copy shows a client every occurrence busy time counts, up to the end, over
real HTTP (`compat_rdates`); past what a copy can list, its reason says it is cut short."""

from __future__ import annotations

import datetime as dt
from datetime import date

import pytest
import requests

from calmirror.compat import CUT, WRITTEN_OUT, compatible_copy, horizon_for
from calmirror.local import LocalServer, LocalStore
from calmirror.testing import ical
from tests.integration.test_expand import BERLIN, busy, calendar, placed, query_expanded

LIMIT = 10_000  # Radicale's occurrence limit (MirrorPolicy.max_occurrences), which the copies stay under


EVERY_90_MINUTES = {  # 960 occurrences in two months; Radicale estimates 86,400 (minutes)
    "zoned": calendar(
        ["UID:pump@test", "SUMMARY:Pump", "DTSTART;TZID=Europe/Berlin:20261101T000000",
         "DTEND;TZID=Europe/Berlin:20261101T001500", "RRULE:FREQ=MINUTELY;INTERVAL=90;UNTIL=20261231T230000Z",
         "EXDATE;TZID=Europe/Berlin:20261230T120000"],
        head=ical.VTIMEZONES["Europe/Berlin"],
    ),
    "floating": calendar(
        ["UID:pump@test", "SUMMARY:Pump", "DTSTART:20261101T000000", "DTEND:20261101T001500",
         "RRULE:FREQ=MINUTELY;INTERVAL=90;UNTIL=20261230T223000"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("form", list(EVERY_90_MINUTES))
def test_a_frequent_rule_ending_inside_the_horizon_reaches_its_end_for_clients(
    served: tuple[LocalServer, LocalStore, requests.Session], form: str
) -> None:
    exact = EVERY_90_MINUTES[form]
    _, store, _ = served
    ((_, refused),) = store.apply_mirror("work", [("pump.ics", exact)], [])  # Radicale counts 86,400 minutes
    copy = compatible_copy(exact, "pump.ics", horizon_for(date.today()), LIMIT, refused=refused)
    assert copy is not None and WRITTEN_OUT in copy.reasons
    assert store.apply_mirror("work", [("pump.ics", copy.text)], []) == []
    window = (dt.datetime(2026, 12, 28, tzinfo=dt.UTC), dt.datetime(2027, 1, 2, tzinfo=dt.UTC))
    events = query_expanded(served, "icloud-work", window)  # the bounded copy stopped on 7 November
    assert len(events) == (
        63 if form == "zoned" else 48
    )  # to 31 December 23:00 UTC, less one EXDATE; to 30 December 22:30
    if form == "floating":  # the server reads floating times in UTC, the engine in Berlin (UTC+1)
        window = (window[0] - dt.timedelta(hours=1), window[1] - dt.timedelta(hours=1))
    assert placed(events, BERLIN) == busy(exact, BERLIN, window)


def test_a_rule_with_more_occurrences_than_a_copy_lists_says_it_is_cut() -> None:
    every_minute = calendar(
        ["UID:tick@test", "DTSTART:20261101T000000Z", "DURATION:PT30S", "RRULE:FREQ=MINUTELY;UNTIL=20261231T000000Z"]
    )
    copy = compatible_copy(every_minute, "tick.ics", horizon_for(date.today()), LIMIT)
    assert copy is not None and CUT in copy.reasons and WRITTEN_OUT not in copy.reasons
