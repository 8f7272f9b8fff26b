"""The light check of mirrored objects must decide exactly as Radicale's own full check.

`items._prepare_light` skips vobject's per-object VTIMEZONE work and re-serialization; what it
stores (UID, component, time range, accepted or not) must still be what Radicale would compute,
or a client's time-range query would silently miss events. Compared on the iCloud fixtures,
the hostile corpus and generated events of every shape the availability engine meets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.local.items import Limits, PreparedItem, _prepare_full, prepare_one, split_timezones
from calmirror.local.radicale_config import build_configuration
from calmirror.testing.ical import VTIMEZONES, stamp, vcalendar
from tests import hostile_corpus
from tests.hostile_items import Case


def _store_limits() -> Limits:
    """The limits the local store really applies (an 11 MB object is refused before any parse)."""
    return Limits.of(build_configuration(Path("/nonexistent-calmirror-store")))


LIMITS = _store_limits()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"


def decided(result: PreparedItem | str) -> tuple[object, ...]:
    if isinstance(result, str):
        return ("refused",)
    return ("stored", result.uid, result.name, result.component_name, result.time_range)


def assert_same_decision(text: str) -> None:
    if len(text.encode("utf-8")) > LIMITS.max_resource_size:
        assert prepare_one("x.ics", text, LIMITS) == "object too large"  # refused before either check
        return
    light, full = prepare_one("x.ics", text, LIMITS), _prepare_full("x.ics", text, LIMITS)
    assert decided(light) == decided(full)
    if isinstance(light, PreparedItem) and isinstance(full, PreparedItem):
        assert light.text in (text, full.text)  # the original, or Radicale's own version of it
        assert light.etag == f'"{hashlib.sha256(light.text.encode()).hexdigest()}"'


def fixture_texts() -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(FIXTURES.rglob("*.ics"))]


def test_the_fixtures_exist() -> None:
    assert len(fixture_texts()) >= 10


@pytest.mark.parametrize("text", fixture_texts(), ids=lambda text: text.split("UID:", 1)[-1][:30].split()[0])
def test_light_and_full_agree_on_the_icloud_fixtures(text: str) -> None:
    assert_same_decision(text)


@pytest.mark.parametrize("case", hostile_corpus.CORPUS, ids=lambda case: case.name)
def test_light_and_full_agree_on_the_hostile_corpus(case: Case) -> None:
    try:
        text = case.body.decode("utf-8") if isinstance(case.body, bytes) else case.body
    except UnicodeDecodeError:
        pytest.skip("not text: refused before any check")
    assert_same_decision(text)


ZONES = st.sampled_from([None, "UTC", *VTIMEZONES])
MOMENTS = st.datetimes(min_value=dt.datetime(1999, 1, 1), max_value=dt.datetime(2040, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)


@st.composite
def events(draw: st.DrawFn) -> str:
    zone = draw(ZONES)
    all_day = draw(st.booleans())
    start: dt.datetime | dt.date = draw(MOMENTS)
    if all_day:
        assert isinstance(start, dt.datetime)
        start = start.date()
    lines = ["UID:prop@example.com", "DTSTAMP:20260101T000000Z", f"DTSTART{stamp(start, zone)}"]
    length = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=3 * 86400)))
    if length is not None:
        if draw(st.booleans()):
            lines.append(f"DURATION:PT{length}S")
        else:
            step = dt.timedelta(days=max(1, length // 86400)) if all_day else dt.timedelta(seconds=length)
            lines.append(f"DTEND{stamp(start + step, zone)}")
    rule = draw(
        st.sampled_from(
            [
                None,
                "FREQ=WEEKLY",
                "FREQ=DAILY;COUNT=5",
                "FREQ=WEEKLY;UNTIL=20410101T000000Z",
                "FREQ=MONTHLY;BYDAY=1MO;COUNT=12",
            ]
        )
    )
    if rule:
        lines.append(f"RRULE:{rule}")
    if draw(st.booleans()):
        lines.append("TRANSP:TRANSPARENT")
    overrides = []
    if rule and draw(st.booleans()):
        moved = start + dt.timedelta(days=7)
        overrides.append(
            [
                "UID:prop@example.com",
                "DTSTAMP:20260101T000000Z",
                f"RECURRENCE-ID{stamp(moved, zone)}",
                f"DTSTART{stamp(moved + dt.timedelta(hours=1) if not all_day else moved, zone)}",
            ]
        )
    head = VTIMEZONES.get(zone or "", []) if draw(st.booleans()) or zone not in (None, "UTC") else []
    return vcalendar(lines, *overrides, head=head)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_light_and_full_agree_on_generated_events(text: str) -> None:
    assert_same_decision(text)


def test_only_top_level_timezones_are_split_off() -> None:
    text = vcalendar(["UID:a", "DTSTART:20260101T100000Z"], head=VTIMEZONES["Europe/Berlin"])
    stripped, blocks, depth = split_timezones(text)
    assert len(blocks) == 1 and "VTIMEZONE" not in stripped and depth == 3
    assert blocks[0].startswith("BEGIN:VTIMEZONE") and blocks[0].endswith("END:VTIMEZONE\r\n")
