"""Busy time of generated iCloud objects, end to end, against an independent oracle.

Objects (tests/differential_objects.py) go into an emulator calendar as iCloud would hold them, byte
for byte; a real mirror pass copies them, and busy time is read back as `calmirror
availability` reads it (the busy index, and the engine past its horizon) and compared, over
windows inside and outside the index's horizon, with the oracle's answer computed from
recurring-ical-events and the documented rules. What a CalDAV client reads from the mirror
(exact and compatible copies; nothing may be withheld) must expand to the same busy time.
Each Hypothesis example batches several objects into one calendar of one module-wide
emulator and home, so an example costs one mirror pass. A longer exploration: CALMIRROR_EXPLORE=N runs N examples.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from calmirror import config
from calmirror.availability.sources import BusySources, ask_daemon
from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.local.layout import mirror_name
from calmirror.state import State
from tests import busy_oracle as oracle
from tests import differential_objects as differential
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, busy_json, connected_home, daemon_running, event

UTC = dt.UTC
ZONE = ZoneInfo("Europe/Berlin")
CONFIG = f"""
[availability]
timezone = "Europe/Berlin"
aliases = ["{differential.ALIAS}"]
tentative_busy = false
guard = "reject"
"""
WINDOWS = [
    (dt.datetime(2025, 11, 20, tzinfo=UTC), dt.datetime(2025, 12, 20, tzinfo=UTC)),  # across the index's past edge
    (dt.datetime(2026, 11, 28, tzinfo=UTC), dt.datetime(2027, 1, 10, tzinfo=UTC)),  # around today
    (dt.datetime(2027, 3, 8, tzinfo=UTC), dt.datetime(2027, 4, 6, tzinfo=UTC)),  # both spring DST changes
    (dt.datetime(2026, 10, 20, tzinfo=UTC), dt.datetime(2026, 11, 10, tzinfo=UTC)),  # both autumn ones
    (dt.datetime(2028, 11, 20, tzinfo=UTC), dt.datetime(2029, 2, 1, tzinfo=UTC)),  # across the far edge
]
EXAMPLES = int(os.environ.get("CALMIRROR_EXPLORE", "0")) or 25
# No shrinking: each step would be a mirror pass. A failure names its objects; the engine's
# own disagreements shrink fast in tests/unit (the same objects, no servers).
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)


@dataclass
class Audit:
    emu: Emulator
    home: Home
    engine: Engine
    cal_id: str
    names: set[str]

    def load(self, objs: list[differential.Obj], *, cli: bool = False) -> list[str]:
        """Replace the calendar's content with `objs` as iCloud holds them; one mirror pass
        (`cli`: `calmirror sync` in a child process, as a user runs it)."""
        texts = {f"{o.uid}.ics": differential.write(o, canonical=False) for o in objs}
        for name in self.names - set(texts):
            self.emu.delete_item(self.cal_id, name)
        for name, text in texts.items():
            self.emu.put_item(self.cal_id, name, text)
        self.names = set(texts)
        if cli:
            env = {**os.environ, "CALMIRROR_HOME": str(self.home.data_dir)}
            done = subprocess.run(
                [sys.executable, "-m", "calmirror", "sync", "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return list(texts.values())
        client = self.engine.client()
        try:
            (report,) = self.engine.mirror_pass(client)
        finally:
            client.close()
        assert not report.error, report.error
        return list(texts.values())

    def client_texts(self) -> list[str]:
        """What a CalDAV client reads from the local mirror of the calendar."""
        row = self.engine.state.mirror(self.cal_id)
        assert row is not None and row.slug
        return list(self.engine.store.items(mirror_name(row.slug)).values())

    def withheld(self) -> dict[str, int]:
        return self.engine.state.copy_counts(self.cal_id)["withheld"]

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


def corpora(low: int, high: int) -> st.SearchStrategy[list[differential.Obj]]:
    return (
        st.integers(low, high)
        .flatmap(lambda n: st.tuples(*(differential.objects(f"obj-{i}") for i in range(n))))
        .map(list)
    )


def odd_windows() -> st.SearchStrategy[tuple[dt.datetime, dt.datetime]]:
    """A window at any minute, inside the index's horizon or reaching past either edge."""
    first = dt.datetime(2025, 11, 1, tzinfo=UTC)
    return st.tuples(st.integers(0, 60 * 24 * 1300), st.integers(1, 60 * 24 * 40)).map(
        lambda m: (first + dt.timedelta(minutes=m[0]), first + dt.timedelta(minutes=m[0] + m[1]))
    )


def differences(
    audit: Audit,
    objs: list[differential.Obj],
    *,
    cli: bool = False,
    also: tuple[tuple[dt.datetime, dt.datetime], ...] = (),
) -> list[str]:
    canonical = [differential.write(o, canonical=True) for o in objs]
    wrong = [f"withheld from clients: {audit.withheld()}"] if audit.withheld() else []
    stored = audit.client_texts()
    for start, end in (*WINDOWS, *also):
        if cli:
            got = busy_json(audit.home, start=f"{start:%Y-%m-%dT%H:%M}", end=f"{end:%Y-%m-%dT%H:%M}")
        else:
            got = audit.busy(start, end)
        want = oracle.busy(canonical, start, end, ZONE, tentative_busy=False)
        if got != want:
            lost = [(a.isoformat(), b.isoformat()) for a, b in want if (a, b) not in got]
            extra = [(a.isoformat(), b.isoformat()) for a, b in got if (a, b) not in want]
            wrong.append(f"{start:%Y-%m-%d}..{end:%Y-%m-%d}: oracle only {lost}, calmirror only {extra}")
        # a CalDAV client expanding what the mirror holds (compatible copies included)
        seen = oracle.busy(stored, start, end, ZONE, tentative_busy=False)
        if seen != want:
            wrong.append(f"{start:%Y-%m-%d}..{end:%Y-%m-%d}: a client of the mirror sees {seen}, not {want}")
    return wrong


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=PHASES,
    derandomize=not os.environ.get("CALMIRROR_EXPLORE"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(objs=corpora(3, 8), window=odd_windows())
def test_busy_time_of_icloud_objects_matches_the_oracle(
    audit: Audit, objs: list[differential.Obj], window: tuple[dt.datetime, dt.datetime]
) -> None:
    audit.load(objs)
    wrong = differences(audit, objs, also=(window,))
    assert not wrong, "\n".join([*wrong, *(differential.write(o, canonical=False) for o in objs)])


@settings(max_examples=2, deadline=None, phases=PHASES, derandomize=True, suppress_health_check=list(HealthCheck))
@given(objs=corpora(8, 12))
def test_calmirror_sync_and_availability_json_agree_with_the_oracle(audit: Audit, objs: list[differential.Obj]) -> None:
    """The same comparison through the commands a user runs, each in its own process."""
    audit.load(objs, cli=True)
    wrong = differences(audit, objs, cli=True)
    assert not wrong, "\n".join([*wrong, *(differential.write(o, canonical=False) for o in objs)])


def _probes(
    busy: list[tuple[dt.datetime, dt.datetime]], window: tuple[dt.datetime, dt.datetime]
) -> tuple[tuple[dt.datetime, dt.datetime] | None, tuple[dt.datetime, dt.datetime]]:
    """Half an hour at the start of the first busy stretch, and half an hour in the middle of
    the longest free gap of the window."""
    on_busy = (busy[0][0], min(busy[0][1], busy[0][0] + dt.timedelta(minutes=30))) if busy else None
    edges = [window[0], *(t for span in busy for t in span), window[1]]
    gaps = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
    a, b = max(gaps, key=lambda g: g[1] - g[0])
    middle = a + (b - a) / 2
    return on_busy, (middle, middle + dt.timedelta(minutes=30))


def _anywhere(objs: list[differential.Obj], start: dt.datetime, end: dt.datetime) -> set[str]:
    """Names of the objects with any occurrence (busy or not) touching [start, end)."""
    found = set()
    for o in objs:
        calendar = icalendar.Calendar.from_ical(differential.write(o, canonical=True))
        if recurring_ical_events.of(calendar).between(start, end):
            found.add(f"{o.uid}.ics")
    return found


def _time_range_names(run: Running, collection: str, start: dt.datetime, end: dt.datetime) -> set[str]:
    """Names of the items a calendar-query with a time range on the local mirror returns."""
    stamp = "%Y%m%dT%H%M%SZ"
    body = (
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop>'
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:time-range start="{start:{stamp}}" end="{end:{stamp}}"/>'
        "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )
    answer = requests.request(
        "REPORT",
        run.collection_url(collection),
        data=body,
        auth=run.auth,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        timeout=60,
    )
    assert answer.status_code == 207, answer.text
    hrefs = re.findall(r"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>", answer.text)
    return {href.rsplit("/", 1)[-1] for href in hrefs if href.endswith(".ics")}


@settings(max_examples=3, deadline=None, phases=PHASES, derandomize=True, suppress_health_check=list(HealthCheck))
@given(objs=corpora(6, 10))
def test_the_guard_refuses_busy_time_and_takes_free_time_as_the_oracle_sees_them(
    audit: Audit, objs: list[differential.Obj]
) -> None:
    """With `guard = "reject"`: a booking on a busy occurrence is refused (409), one in free
    time is taken (201), inside the busy index's horizon and across its far edge; the daemon's
    free-busy REPORT on `busy/` is the oracle's busy time too; and a client's time-range query
    on the mirror finds every object with an occurrence in the window (Radicale's expansion
    of what the mirror holds, compatible copies included), and none far from it."""
    audit.load(objs)
    canonical = [differential.write(o, canonical=True) for o in objs]
    with daemon_running(audit.home) as run:
        row = audit.engine.state.mirror(audit.cal_id)
        assert row is not None and row.slug
        slack = dt.timedelta(days=1)  # the server expands in wall-clock time (not RFC 5545's exact hours)
        # (an override of an occurrence an EXDATE removes counts, and the copy shows it: the
        # oracle's canonical text does not exclude it, `differential_objects.write`)
        for start, end in WINDOWS:  # the local server places every object, compatible copies too
            got = _time_range_names(run, mirror_name(row.slug), start, end)
            inner, outer = (
                _anywhere(objs, start + slack, end - slack),
                _anywhere(objs, start - slack, end + slack),
            )
            assert inner <= got <= outer, (start, sorted(got))
        for n, window in enumerate((WINDOWS[1], WINDOWS[3])):
            want = oracle.busy(canonical, *window, ZONE, tentative_busy=False)
            assert ask_daemon(run.url, *run.auth, *window) == want, window
            on_busy, on_free = _probes(want, window)
            stamp = "%Y%m%dT%H%M%SZ"
            if on_busy is not None:
                a, b = f"{on_busy[0]:{stamp}}", f"{on_busy[1]:{stamp}}"
                answer = run.put(f"probe-busy-{n}.ics", event(f"probe-busy-{n}", "Probe", a, b))
                assert answer.status_code == 409, (on_busy, answer.status_code, answer.text)
                # a series whose third day is the busy time, and a FREE booking on it
                a2, b2 = (f"{t - dt.timedelta(days=2):{stamp}}" for t in on_busy)
                daily = event(f"probe-daily-{n}", "Probe", a2, b2, extra="RRULE:FREQ=DAILY;COUNT=3\r\n")
                answer = run.put(f"probe-daily-{n}.ics", daily)
                assert answer.status_code == 409, (on_busy, answer.status_code, answer.text)
                free = event(f"probe-transparent-{n}", "Probe", a, b, extra="TRANSP:TRANSPARENT\r\n")
                answer = run.put(f"probe-transparent-{n}.ics", free)
                assert answer.status_code == 201, (on_busy, answer.status_code, answer.text)
                assert run.delete(f"probe-transparent-{n}.ics").ok
            answer = run.put(
                f"probe-free-{n}.ics",
                event(f"probe-free-{n}", "Probe", f"{on_free[0]:{stamp}}", f"{on_free[1]:{stamp}}"),
            )
            assert answer.status_code == 201, (on_free, answer.status_code, answer.text)
            assert run.delete(f"probe-free-{n}.ics").ok
