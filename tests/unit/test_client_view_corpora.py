"""Every corpus object, as a CalDAV client of the mirror reads it: each busy occurrence the
engine counts starts where Radicale's own time-range walk over the mirror's copy (exact or
compatible) has an occurrence. Floating times and dates are read in UTC on both sides (as
Radicale reads them), travel time off (clients see the event, not the journey)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calmirror import compat
from calmirror.availability import engine as av
from calmirror.local.items import Limits, prepare_one
from calmirror.model import MirrorEntry
from calmirror.plan import MirrorPolicy, fallback_entry, mirror_write
from tests import hostile_corpus, icloud_shapes
from tests.corpora import FIXTURES
from tests.radicale_view import radicale_starts

UTC = dt.UTC
POLICY = MirrorPolicy(source="cal", horizon=compat.horizon_for(dt.date(2026, 12, 7)))
RULES = av.Rules(tz=ZoneInfo("UTC"), me=frozenset({"me@example.com"}), travel_time=False)
NEAR = (dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2027, 4, 1, tzinfo=UTC))
HOSTILE = tuple(dt.datetime.fromisoformat(t).replace(tzinfo=UTC) for t in hostile_corpus.BUSY_WINDOW)

CASES: dict[str, tuple[str, tuple[dt.datetime, dt.datetime]]] = {
    **{f"fixture:{p.name}": (p.read_bytes().decode(), NEAR) for p in sorted(FIXTURES.glob("*/*.ics"))},
    **{f"shape:{name}": (text, NEAR) for name, text in icloud_shapes.SHAPES.items()},
    **{f"must-count:{n}": (hostile_corpus.BY_NAME[n].body.decode(), HOSTILE) for n in hostile_corpus.MUST_COUNT},
}


def client_copy(text: str, policy: MirrorPolicy = POLICY) -> str:
    """What the mirror stores, decided as a mirror pass under `policy` decides it."""
    _, copy, _ = mirror_write(text, "obj.ics", policy)
    checked = prepare_one("obj.ics", copy, Limits())
    if isinstance(checked, str):
        fallback = fallback_entry(MirrorEntry("obj.ics", "", "", "obj.ics", body=text), policy, checked)
        assert fallback is not None, f"withheld from clients: {checked}"
        copy = fallback[1]
    return copy


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_client_of_the_mirror_finds_every_busy_occurrence(name: str) -> None:
    text, window = CASES[name]
    copy = client_copy(text)
    found = av.busy_occurrences([av.Source("s", [av.parse_calendar(text)])], *window, RULES)
    starts = {o.start for o in found if not o.approximate and window[0] <= o.start < window[1]}
    missing = sorted(starts - set(radicale_starts(copy, window)))
    assert not missing, missing[:5]
