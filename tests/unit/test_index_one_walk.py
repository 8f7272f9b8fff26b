"""The busy index expands each series in one walk over its horizon (`expansion.in_one_walk`)
instead of the 63-day blocks repeated queries use: its entries must be exactly the entries
the blocks give (same rows, same order), over the oracle's generated objects (rules, counts,
untils, exdates, rdates, overrides, every zone form) and every corpus the tests hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from calmirror.availability import engine, expansion, spans
from calmirror.model import IndexedItem
from tests import differential_objects as differential
from tests.corpora import corpus_texts

UTC = dt.UTC
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"
ZONES = ["Europe/Berlin", "America/Los_Angeles"]


def entry_pair(text: str, now: dt.datetime, zone: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """(one walk, blocks): the index entry, or the reason computing it failed, each way."""
    rules = engine.Rules(tz=ZoneInfo(zone), me=frozenset({differential.ME, differential.ALIAS, "me@example.com"}))
    window = spans.horizon_at(now)

    def entry() -> IndexedItem | str:
        try:
            return spans.index_text(text, rules, window)
        except Exception as exc:  # both ways must fail alike
            return type(exc).__name__

    walked = entry()
    with monkeypatch.context() as patched:
        patched.setattr(engine, "in_one_walk", lambda *_args: None)
        blocks = entry()
    return walked, blocks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=differential.objects("obj"), zone=st.sampled_from(ZONES), anchor=st.sampled_from(differential.ANCHORS))
@example(  # a series too dense for blocks, with an RDATE: expanded per window, its rows in the library's order
    obj=differential.Obj(
        uid="obj",
        form="utc",
        zone="",
        start=dt.datetime(2026, 12, 10),
        length=dt.timedelta(minutes=15),
        end_form="dtend",
        rule="FREQ=MINUTELY;INTERVAL=90;BYHOUR=0",
        ending=("count", 2),
        props=differential.Props(),
        rdates=((1, 6, False),),
    ),
    zone="Europe/Berlin",
    anchor=dt.datetime(2026, 12, 10),
)
def test_generated_series_give_the_blocks_entries(
    monkeypatch: pytest.MonkeyPatch, obj: differential.Obj, zone: str, anchor: dt.datetime
) -> None:
    text = differential.write(obj, canonical=False)
    walked, blocks = entry_pair(text, anchor.replace(tzinfo=UTC), zone, monkeypatch)
    assert walked == blocks, text


def weekly_corpus() -> Iterator[tuple[str, str]]:
    """Every corpus text the tests hold; of the generated ones, the weekly series."""
    for name, text in corpus_texts(300, seed=5):
        if not name.startswith("corpus ") or "RRULE:FREQ=WEEKLY" in text:
            yield name, text


def test_every_corpus_text_gives_the_blocks_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    series = 0
    for name, text in weekly_corpus():
        walked, blocks = entry_pair(text, dt.datetime(2026, 12, 7, tzinfo=UTC), "Europe/Berlin", monkeypatch)
        assert walked == blocks, name
        series += isinstance(walked, IndexedItem) and len(walked.spans) > 1
    assert series > 40


def test_a_series_too_dense_for_one_walk_is_left_to_the_blocks() -> None:
    """An every-15-minutes rule has more occurrences in the horizon than one walk may take:
    the one walk declines (its stand-in would be approximate) and the blocks answer."""
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:dense\r\n"
        "DTSTART:20261201T000000Z\r\nDTEND:20261201T000500Z\r\nRRULE:FREQ=MINUTELY;INTERVAL=15\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    found = engine.item_index(engine.parse_calendar(text))
    window = (dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2028, 1, 1, tzinfo=UTC))
    assert expansion.in_one_walk(found.series[0], window, ZoneInfo("UTC")) is None
    short = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2026, 12, 2, tzinfo=UTC))
    walked = expansion.in_one_walk(found.series[0], short, ZoneInfo("UTC"))
    assert walked is not None and len(walked) == 96
