"""The wild shapes (`tests/wild_shapes.py`) end to end: the emulator holds and serves each as
iCloud does, a real mirror pass copies it, busy time is what a person works out by hand, and a
CalDAV client of the mirror finds exactly those occurrences, no more and no fewer (Radicale's
own time-range walk over what the mirror stores, and recurring-ical-events over the same text)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events
import requests

from calmirror.availability.sources import BusySources
from calmirror.emulator import Emulator
from tests.helpers import APP_PASSWORD, APPLE_ID, connected_home, mirrored_once
from tests.mirrored_shapes import Mirrored, mirrored_shapes, same_lines
from tests.radicale_view import radicale_starts
from tests.wild_shapes import FLOATING_SINGLE, WILD, Wild

UTC = dt.UTC
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 10, tzinfo=UTC))
CONFIG = '\n[availability]\ntimezone = "Europe/Berlin"\n'


def z(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    shapes = [(shape.name, shape.text) for shape in WILD]
    with mirrored_shapes(tmp_path_factory.mktemp("wild"), "Wild", shapes, CONFIG) as done:
        yield done


def library_starts(text: str, window: tuple[dt.datetime, dt.datetime] = WINDOW) -> list[dt.datetime]:
    found = recurring_ical_events.of(icalendar.Calendar.from_ical(text)).between(*window)
    starts = [e["DTSTART"].dt for e in found]
    return sorted(_utc(s) for s in starts)


def _utc(value: dt.date) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(), tzinfo=UTC)  # a date, as the local server reads it
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.mark.parametrize("shape", WILD, ids=[s.name for s in WILD])
def test_the_emulator_holds_it_busy_time_counts_it_and_a_client_sees_exactly_it(
    mirrored: Mirrored, shape: Wild
) -> None:
    url = mirrored.emu.calendar_url(mirrored.cal_id) + f"{shape.name}.ics"
    served = requests.get(url, auth=(APPLE_ID, APP_PASSWORD), timeout=30)
    assert served.status_code == 200
    assert same_lines(served.content.decode()) == same_lines(shape.text)

    window = (z(shape.window[0]), z(shape.window[1]))
    busy = BusySources(mirrored.engine.store, mirrored.engine.state, mirrored.engine.settings)
    found = busy.occurrences(*window)
    assert found is not None
    want = [(z(a), z(b)) for a, b in shape.busy]
    assert [(o.start, o.end) for o in found if o.uid == shape.key] == want

    (stored,) = mirrored.client_texts(shape.key)
    starts = [a for a, _ in want] if shape.seen is None else [z(a) for a in shape.seen]
    assert radicale_starts(stored, window) == sorted([*starts, *(z(a) for a in shape.radicale_extra)])
    assert library_starts(stored, window) == starts


def test_a_change_of_the_configured_zone_binds_floating_copies_again(tmp_path: Path) -> None:
    """Copies made while the zone was UTC (floating left floating: Radicale reads them as UTC
    already) are derived again at the next pass after the zone changes, with no change in iCloud."""
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:
        cal_id = emu.create_calendar("Wild")
        emu.put_item(cal_id, "floating-single.ics", FLOATING_SINGLE.text)
        home = connected_home(tmp_path, emu, conflicts=("Wild",))
        with mirrored_once(home) as engine:
            (utc_copy,) = Mirrored(emu, engine, cal_id).client_texts(FLOATING_SINGLE.key)
        assert radicale_starts(utc_copy, WINDOW) == [z("2026-12-15 10:00")]
        with home.config_file.open("a", encoding="utf-8") as config:
            config.write(CONFIG)
        with mirrored_once(home) as engine:
            (berlin_copy,) = Mirrored(emu, engine, cal_id).client_texts(FLOATING_SINGLE.key)
        assert radicale_starts(berlin_copy, WINDOW) == [z("2026-12-15 09:00")]
