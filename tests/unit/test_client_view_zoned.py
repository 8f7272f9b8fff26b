"""Every corpus object as a client of the mirror reads it with a configured zone other than
UTC: floating times are bound to that zone in the copy (`compat_floating`), so each busy
occurrence the engine counts, read in Europe/Berlin, starts where Radicale's own time-range walk
over the copy has one. (Dates stay dates: Radicale reads all-day events as UTC days, so only
timed occurrences are compared.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import engine as av
from calmirror.compat_floating import bind_floating, has_floating_times
from calmirror.compat_zones import drop_empty_zones, has_empty_zones
from calmirror.ical_lines import Resource
from tests.corpora import corpus_texts
from tests.radicale_view import radicale_starts
from tests.unit.test_client_view_corpora import CASES, POLICY, client_copy

ZONED = replace(POLICY, floating_zone="Europe/Berlin")
RULES = av.Rules(tz=ZoneInfo("Europe/Berlin"), me=frozenset({"me@example.com"}), travel_time=False)


def zoned_copy(text: str) -> str:
    return client_copy(text, ZONED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_client_of_a_zoned_mirror_finds_every_timed_busy_occurrence(name: str) -> None:
    text, window = CASES[name]
    copy = zoned_copy(text)
    calendar = av.parse_calendar(text)
    found = av.busy_occurrences([av.Source("s", [calendar])], *window, RULES)
    all_day = {e.get("DTSTART").dt for e in calendar.walk("VEVENT") if e.get("DTSTART") is not None}
    timed = all(isinstance(d, dt.datetime) for d in all_day)
    starts = {o.start for o in found if not o.approximate and window[0] <= o.start < window[1]}
    missing = sorted(starts - set(radicale_starts(copy, window))) if timed else []
    assert not missing, missing[:5]


def test_the_first_look_misses_no_object_whose_copy_binds_floating_times() -> None:
    """`has_floating_times` decides alone whether a copy is made for them (a cheap look over
    every mirrored object): no object the full rewrite would change may be passed over."""
    missed = []
    for name, text in corpus_texts(400, seed=11):
        try:
            resource = Resource.parse(text)
        except ValueError:
            continue
        drop_empty_zones(resource)  # (made before the binding, for an empty zone's times)
        if bind_floating(resource, "Europe/Berlin") and not (has_floating_times(text) or has_empty_zones(text)):
            missed.append(name)
    assert not missed
