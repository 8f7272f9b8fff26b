"""A check worker hands a batch's busy-index entries back to the pass pickled
(`IndexedItem.__reduce__`, plain tuples instead of the dataclasses' state protocol): what
arrives must be the very entry that was sent, field by field and type by type, and as
frozen as one made by its constructor."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability import engine, spans
from calmirror.model import BusySpan, IndexedItem
from tests.corpora import corpus_texts

texts = st.text(st.characters(codec="utf-8"), max_size=12) | st.text(max_size=12)  # lone surrogates too
times = st.integers(min_value=-(2**62), max_value=2**62)
busy_spans = st.builds(
    BusySpan,
    uid=texts,
    summary=texts,
    start=times,
    end=times,
    travel=times,
    all_day=st.booleans(),
    tentative=st.booleans(),
    maybe=st.booleans(),
    approximate=st.booleans(),
    unavailable=st.booleans(),
)
entries = st.builds(
    IndexedItem,
    digest=texts,
    lo=st.none() | times,
    hi=st.none() | times,
    spans=st.lists(busy_spans, max_size=8).map(tuple),
)


def field_types(value: object) -> list[tuple[str, type]]:
    assert dataclasses.is_dataclass(value)
    return [(f.name, type(getattr(value, f.name))) for f in dataclasses.fields(value)]


def assert_same(sent: IndexedItem, arrived: IndexedItem) -> None:
    assert arrived == sent
    assert type(arrived) is IndexedItem and field_types(arrived) == field_types(sent)
    assert len(arrived.spans) == len(sent.spans)
    for a, b in zip(arrived.spans, sent.spans, strict=True):
        assert type(a) is BusySpan and field_types(a) == field_types(b) and hash(a) == hash(b)


@given(entries, st.sampled_from(range(pickle.HIGHEST_PROTOCOL + 1)))
def test_an_entry_arrives_as_it_was_sent(entry: IndexedItem, protocol: int) -> None:
    assert_same(entry, pickle.loads(pickle.dumps(entry, protocol=protocol)))


@given(st.dictionaries(texts, entries, max_size=4))
def test_a_batch_of_entries_arrives_as_it_was_sent(batch: dict[str, IndexedItem]) -> None:
    arrived = pickle.loads(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    assert arrived.keys() == batch.keys()
    for href, entry in batch.items():
        assert_same(entry, arrived[href])


def test_the_entries_of_every_corpus_text_arrive_as_computed() -> None:
    rules = engine.Rules(tz=ZoneInfo("Europe/Berlin"), me=frozenset({"me@example.com"}))
    window = spans.horizon_at(dt.datetime(2025, 3, 1, tzinfo=dt.UTC))
    computed = {}
    for name, text in corpus_texts(200, 7):
        try:
            computed[name] = spans.index_text(text, rules, window)
        except Exception:  # a text the index cannot read is not this test's business
            continue
    assert sum(len(entry.spans) for entry in computed.values()) > 1000
    arrived = pickle.loads(pickle.dumps(computed, protocol=pickle.HIGHEST_PROTOCOL))
    for name, entry in computed.items():
        assert_same(entry, arrived[name])


def test_an_arrived_span_is_frozen() -> None:
    span = BusySpan("u", "s", 1, 2, 0, False, False, False, False)
    arrived = pickle.loads(pickle.dumps(IndexedItem("d", 1, 2, (span,)))).spans[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        arrived.start = 5  # type: ignore[misc]
