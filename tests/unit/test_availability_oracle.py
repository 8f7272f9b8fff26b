"""The engine alone against the independent oracle of tests/busy_oracle.py: the same
generated iCloud objects as the end-to-end differential test, without servers, so a
disagreement of the engine itself shrinks to a minimal object in seconds."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from calmirror.availability import engine as av
from tests import busy_oracle as oracle

UTC = dt.UTC
WINDOWS = [
    (dt.datetime(2025, 11, 20, tzinfo=UTC), dt.datetime(2025, 12, 20, tzinfo=UTC)),
    (dt.datetime(2026, 11, 28, tzinfo=UTC), dt.datetime(2027, 1, 10, tzinfo=UTC)),
    (dt.datetime(2027, 3, 8, tzinfo=UTC), dt.datetime(2027, 4, 6, tzinfo=UTC)),
    (dt.datetime(2028, 11, 20, tzinfo=UTC), dt.datetime(2029, 2, 1, tzinfo=UTC)),
]


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    objs=st.integers(1, 3).flatmap(lambda n: st.tuples(*(oracle.objects(f"obj-{i}") for i in range(n)))),
    zone=st.sampled_from(["Europe/Berlin", "America/Los_Angeles", "UTC"]),
    tentative_busy=st.booleans(),
)
def test_the_engine_agrees_with_the_oracle(objs: tuple[oracle.Obj, ...], zone: str, tentative_busy: bool) -> None:
    tz = ZoneInfo(zone)
    rules = av.Rules(tz=tz, me=frozenset({oracle.ME, oracle.ALIAS}), tentative_busy=tentative_busy)
    sources = [av.Source("s", [av.parse_calendar(oracle.write(o, canonical=False))]) for o in objs]
    canonical = [oracle.write(o, canonical=True) for o in objs]
    for start, end in WINDOWS:
        got = av.busy_intervals(sources, start, end, rules)
        assert got == oracle.busy(canonical, start, end, tz, tentative_busy), (
            start,
            [oracle.write(o, False) for o in objs],
        )
