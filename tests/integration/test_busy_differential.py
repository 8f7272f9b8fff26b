"""Busy time of generated iCloud objects, end to end, against an independent oracle.

Objects (tests/busy_oracle.py) go into an emulator calendar as iCloud would hold them, byte
for byte; a real mirror pass copies them, and busy time is read back as `calmirror
availability` reads it (the busy index, and the engine past its horizon) and compared, over
windows inside and outside the index's horizon, with the oracle's answer computed from
recurring-ical-events and the documented rules. Each Hypothesis example batches several
objects into one calendar of one module-wide emulator and home, so an example costs one
mirror pass. A longer exploration: CALMIRROR_EXPLORE=N runs N examples.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror import config
from calmirror.availability.sources import BusySources
from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State
from tests import busy_oracle as oracle
from tests.helpers import APP_PASSWORD, APPLE_ID, connected_home

UTC = dt.UTC
ZONE = ZoneInfo("Europe/Berlin")
CONFIG = f"""
[availability]
timezone = "Europe/Berlin"
aliases = ["{oracle.ALIAS}"]
tentative_busy = false
guard = "reject"
"""
WINDOWS = [
    (dt.datetime(2025, 11, 20, tzinfo=UTC), dt.datetime(2025, 12, 20, tzinfo=UTC)),  # across the index's past edge
    (dt.datetime(2026, 11, 28, tzinfo=UTC), dt.datetime(2027, 1, 10, tzinfo=UTC)),  # around today
    (dt.datetime(2027, 3, 8, tzinfo=UTC), dt.datetime(2027, 4, 6, tzinfo=UTC)),  # both DST changes
    (dt.datetime(2028, 11, 20, tzinfo=UTC), dt.datetime(2029, 2, 1, tzinfo=UTC)),  # across the far edge
]
EXAMPLES = int(os.environ.get("CALMIRROR_EXPLORE", "0")) or 25


@dataclass
class Audit:
    emu: Emulator
    home: Home
    engine: Engine
    cal_id: str
    names: set[str]

    def load(self, objs: list[oracle.Obj]) -> list[str]:
        """Replace the calendar's content with `objs` as iCloud holds them; one mirror pass."""
        texts = {f"{o.uid}.ics": oracle.write(o, canonical=False) for o in objs}
        for name in self.names - set(texts):
            self.emu.delete_item(self.cal_id, name)
        for name, text in texts.items():
            self.emu.put_item(self.cal_id, name, text)
        self.names = set(texts)
        client = self.engine.client()
        try:
            (report,) = self.engine.mirror_pass(client)
        finally:
            client.close()
        assert not report.error, report.error
        return list(texts.values())

    def busy(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        return BusySources(self.engine.store, self.engine.state, self.engine.settings).busy(start, end)


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu:
        cal_id = emu.create_calendar("Audit")
        home = connected_home(tmp_path_factory.mktemp("audit"), emu, conflicts=("Audit",), extra_config=CONFIG)
        engine = Engine(home, config.load(home.config_file), State(home.state_db))
        try:
            yield Audit(emu, home, engine, cal_id, set())
        finally:
            engine.state.close()


def corpora(low: int, high: int) -> st.SearchStrategy[list[oracle.Obj]]:
    return (
        st.integers(low, high).flatmap(lambda n: st.tuples(*(oracle.objects(f"obj-{i}") for i in range(n)))).map(list)
    )


def differences(audit: Audit, objs: list[oracle.Obj]) -> list[str]:
    canonical = [oracle.write(o, canonical=True) for o in objs]
    wrong = []
    for start, end in WINDOWS:
        got = audit.busy(start, end)
        want = oracle.busy(canonical, start, end, ZONE, tentative_busy=False)
        if got != want:
            lost = [(a.isoformat(), b.isoformat()) for a, b in want if (a, b) not in got]
            extra = [(a.isoformat(), b.isoformat()) for a, b in got if (a, b) not in want]
            wrong.append(f"{start:%Y-%m-%d}..{end:%Y-%m-%d}: oracle only {lost}, calmirror only {extra}")
    return wrong


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("CALMIRROR_EXPLORE"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(objs=corpora(3, 8))
def test_busy_time_of_icloud_objects_matches_the_oracle(audit: Audit, objs: list[oracle.Obj]) -> None:
    audit.load(objs)
    wrong = differences(audit, objs)
    assert not wrong, "\n".join([*wrong, *(oracle.write(o, canonical=False) for o in objs)])
