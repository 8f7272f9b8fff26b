"""The busy index answers exactly what the engine answers, inside the horizon, beyond it and
across a horizon move; and after a crash only the entries whose text changed are computed again.

Real parts throughout: a state database on disk, a Radicale store on disk, mirror batches
written through `apply_mirror_map` as the mirror writes them.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror import config
from calmirror.availability import engine as av
from calmirror.availability import spans
from calmirror.availability.busy_upkeep import PUSHED_IN_ICLOUD, BusyUpkeep
from calmirror.availability.sources import BusySources
from calmirror.local.layout import APPOINTMENTS
from calmirror.local.store import LocalStore
from calmirror.model import MirrorEntry, RemoteVersion
from calmirror.state import State
from calmirror.state.busy import META as BUSY_META
from tests.unit.test_availability_property import BASE, Ev, events, to_ics

UTC = dt.UTC
CAL = "WORK"
USER = "me"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@contextmanager
def world(zone: str, clock: Clock, *, allday: bool = True, tentative: bool = True) -> Iterator[BusySources]:
    with tempfile.TemporaryDirectory() as root:
        path = Path(root)
        settings = config.Settings(file=path / "config.toml")
        settings = replace(
            settings,
            availability=replace(settings.availability, timezone=zone, allday_busy=allday, tentative_busy=tentative),
        )
        state = State(path / "state.db")
        store = LocalStore(path / "store", USER)
        store.ensure_base()
        state.update_mirror(CAL, slug="work")
        try:
            yield BusySources(store, state, settings, clock=clock)
        finally:
            state.close()


def mirror_write(busy: BusySources, texts: dict[str, str], deletes: list[str] = ()) -> None:  # type: ignore[assignment]
    """What the mirror does for one batch: entries computed first, then one transaction."""
    entries = [MirrorEntry(href, f"e-{spans.digest(t)}", href, href, body=t) for href, t in texts.items()]
    batch = BusyUpkeep(busy.store, busy.state, busy.settings).mirror_batch(CAL, dict(texts))
    busy.state.apply_mirror_map(CAL, entries, list(deletes), {}, replace=False, busy=batch)


def engine_answer(busy: BusySources, ws: dt.datetime, we: dt.datetime) -> list[av.BusyOccurrence]:
    """The engine over freshly parsed sources: the reference the index must equal."""
    state, rules = busy.state, busy.rules()
    appointments = state.appointment_uids()
    mirror = [av.parse_calendar(t) for t in state.mirror_texts(CAL).values()]
    local = [av.parse_calendar(t) for t in busy.store.items(APPOINTMENTS).values()]
    pushed = [av.parse_calendar(v.body) for v in state.differing_remote_versions() if v.body]
    a = busy.settings.availability
    sources = [
        av.Source("appointments", local, a.allday_busy),
        av.Source("icloud-work", mirror, a.allday_busy, appointments),
        av.Source(PUSHED_IN_ICLOUD, pushed, a.allday_busy),
    ]
    return av.busy_occurrences(sources, ws, we, rules)


def resources(draw: st.DrawFn, prefix: str, per: int) -> dict[str, str]:
    """Up to four resources of up to `per` events (Radicale takes one UID per object)."""
    count = draw(st.integers(0, 4))
    out = {}
    for n in range(count):
        evs: list[Ev] = draw(st.lists(events(), min_size=1, max_size=per))
        text = to_ics(evs).replace("UID:ev", f"UID:{prefix}{n}-ev")
        out[f"{prefix}{n}.ics"] = text
    return out


window_hours = st.tuples(st.integers(-24 * 40, 24 * 420), st.integers(1, 24 * 200))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    edge_days=st.integers(-30, 420),
    allday=st.booleans(),
    tentative=st.booleans(),
    windows=st.lists(window_hours, min_size=1, max_size=4),
    roll_days=st.integers(0, 90),
    near_start=st.booleans(),
)
def test_index_answers_equal_the_engine_inside_beyond_and_across_a_move(
    data: st.DataObject,
    zone: str,
    edge_days: int,
    allday: bool,
    tentative: bool,
    windows: list[tuple[int, int]],
    roll_days: int,
    near_start: bool,
) -> None:
    # The horizon's end (or its start) falls `edge_days` after BASE, so generated events straddle it.
    edge = -spans.HORIZON_AHEAD if not near_start else spans.HORIZON_BACK
    clock = Clock(BASE.replace(tzinfo=UTC) + edge + dt.timedelta(days=edge_days, hours=5))
    mirror = data.draw(st.composite(lambda d: resources(d, "m", 3))())
    local = data.draw(st.composite(lambda d: resources(d, "a", 1))())
    with world(zone, clock, allday=allday, tentative=tentative) as busy:
        for href, text in local.items():
            busy.store.write_appointment(href, text)
        # One appointment UID also in the mirror: only the local one counts, and iCloud's
        # differing version through the pushed-in-iCloud source.
        if local and mirror:
            uid = next(iter(local)).removesuffix(".ics") + "-ev0"
            busy.state.update_appointment(uid, local_href=next(iter(local)), remote_etag="agreed")
            moved = next(iter(mirror.values())).replace("UID:m0-ev0", f"UID:{uid}")
            mirror["shared.ics"] = moved
            busy.state.set_remote_version(RemoteVersion(uid, CAL, "shared.ics", "newer", moved, 0.0))
        busy.upkeep.ensure()
        mirror_write(busy, mirror)
        for start_h, length_h in windows:
            ws = BASE.replace(tzinfo=UTC) + dt.timedelta(hours=start_h)
            we = ws + dt.timedelta(hours=length_h)
            expected = engine_answer(busy, ws, we)
            assert busy.occurrences(ws, we) == expected
            assert busy.busy(ws, we) == av.merge((max(o.start, ws), min(o.end, we)) for o in expected)
        clock.now += dt.timedelta(days=roll_days)
        busy.upkeep.roll()
        for start_h, length_h in windows:
            ws = BASE.replace(tzinfo=UTC) + dt.timedelta(hours=start_h)
            we = ws + dt.timedelta(hours=length_h)
            assert busy.occurrences(ws, we) == engine_answer(busy, ws, we)


def test_an_override_moved_onto_another_instance_counts_twice_in_index_and_engine() -> None:
    """Found by the property above: the first instance moved onto the second's time. Both
    occurrences are busy; the engine once kept one of them for windows spanning several of
    its expansion blocks, so the index (one walk) and the engine disagreed."""
    moved = Ev(
        "berlin", BASE, dt.timedelta(minutes=15), 1, 2, "", False, frozenset(), False, 0, dt.timedelta(days=1), False
    )
    text = to_ics([moved]).replace("UID:ev", "UID:a0-ev")
    for edge in (spans.HORIZON_BACK, -spans.HORIZON_AHEAD):  # the horizon starting, or ending, at BASE
        clock = Clock(BASE.replace(tzinfo=UTC) + edge + dt.timedelta(hours=5))
        with world("UTC", clock, allday=False, tentative=False) as busy:
            busy.store.write_appointment("a0.ics", text)
            busy.upkeep.ensure()
            ws = BASE.replace(tzinfo=UTC)
            for hours in (24, 841):
                we = ws + dt.timedelta(hours=hours)
                found = busy.occurrences(ws, we)
                assert found == engine_answer(busy, ws, we)
                assert [o.start for o in found] == [dt.datetime(2027, 3, 1, 23, tzinfo=UTC)] * 2


def daily_items(count: int) -> dict[str, str]:
    """`count` resources, one a day from BASE: every other one a weekly series of five."""
    return {
        f"{n}.ics": to_ics(
            [
                Ev(
                    "utc",
                    BASE + dt.timedelta(days=n),
                    dt.timedelta(hours=1),
                    7 if n % 2 else 0,
                    5,
                    "",
                    False,
                    frozenset(),
                    False,
                    None,
                    dt.timedelta(0),
                    False,
                )
            ]
        ).replace("UID:ev0", f"UID:item{n}")
        for n in range(count)
    }


def test_a_restart_recomputes_only_entries_changed_behind_the_index(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    texts = daily_items(20)
    with world("Europe/Berlin", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, texts)
        window = (BASE.replace(tzinfo=UTC), BASE.replace(tzinfo=UTC) + dt.timedelta(days=90))
        before = busy.occurrences(*window)
        assert before == engine_answer(busy, *window) and len(before) == 10 + 10 * 5

        # Behind the index's back: one text changed, one removed, one added (a crash between
        # a write and its entry, a restore, an older calmirror).
        changed = texts["3.ics"].replace("T000000", "T120000")
        busy.state.db.conn.execute("UPDATE mirror_items SET body = ? WHERE href = '3.ics'", (changed,))
        busy.state.db.conn.execute("DELETE FROM mirror_items WHERE href = '4.ics'")
        extra = texts["5.ics"].replace("UID:item5", "UID:extra")
        busy.state.db.conn.execute(
            "INSERT INTO mirror_items (calendar_id, href, etag, uid, local_href, body) "
            "VALUES (?, 'x.ics', 'e', 'extra', 'x.ics', ?)",
            (CAL, extra),
        )
        restarted = BusySources(busy.store, busy.state, busy.settings, clock=clock)
        parsed = spans.parsed
        restarted.warm()
        assert spans.parsed - parsed == 2  # the changed text and the new one, nothing else
        after = restarted.occurrences(*window)
        assert after == engine_answer(restarted, *window)
        assert after != before

        parsed = spans.parsed
        restarted.warm()
        assert spans.parsed == parsed  # nothing changed since: nothing parsed


def test_an_unfinished_build_keeps_the_entries_it_has_and_computes_only_the_rest(tmp_path: Path) -> None:
    """A daemon stopped while building the index, or a `calmirror sync` whose mirror passes
    wrote entries before any daemon ran: the next start must not parse every event again."""
    clock = Clock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    texts = daily_items(20)
    with world("UTC", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, texts)
        window = (BASE.replace(tzinfo=UTC), BASE.replace(tzinfo=UTC) + dt.timedelta(days=90))
        meta = busy.state.busy_meta()
        assert meta is not None and meta["complete"]
        unfinished = json.dumps({**meta, "complete": False})
        conn = busy.state.db.conn
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (unfinished, BUSY_META))
        conn.execute("DELETE FROM busy_spans WHERE item IN (SELECT id FROM busy_items WHERE href = '7.ics')")
        conn.execute("DELETE FROM busy_items WHERE href = '7.ics'")  # an entry the build had not reached

        restarted = BusySources(busy.store, busy.state, busy.settings, clock=clock)
        parsed = spans.parsed
        restarted.warm()
        assert spans.parsed - parsed == 1  # only the entry the build had not written
        assert restarted.occurrences(*window) == engine_answer(restarted, *window)
        finished = busy.state.busy_meta()
        assert finished is not None and finished["complete"]


def test_changed_rules_rebuild_the_index_once(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    declined = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:inv\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270302T100000Z\r\nDTEND:20270302T110000Z\r\nATTENDEE;PARTSTAT=DECLINED:mailto:alias@example.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with world("UTC", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {"inv.ics": declined})
        window = (dt.datetime(2027, 3, 2, tzinfo=UTC), dt.datetime(2027, 3, 3, tzinfo=UTC))
        assert busy.busy(*window) == [
            (dt.datetime(2027, 3, 2, 10, tzinfo=UTC), dt.datetime(2027, 3, 2, 11, tzinfo=UTC))
        ]
        a = busy.settings.availability
        busy.settings = replace(busy.settings, availability=replace(a, aliases=("alias@example.com",)))
        parsed = spans.parsed
        assert busy.busy(*window) == []  # the user declined it under an alias the index now knows
        assert spans.parsed - parsed == 1
        parsed = spans.parsed
        assert busy.busy(*window) == []
        assert spans.parsed == parsed


def test_a_rule_too_dense_to_expand_loses_no_busy_time() -> None:
    """Every other minute, forever: too many occurrences for one walk, so the entry is walked
    per chunk and the engine's stand-in (marked approximate) covers what it could not expand."""
    clock = Clock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    dense = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:dense\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270301T000000Z\r\nDTEND:20270301T000100Z\r\nRRULE:FREQ=MINUTELY;INTERVAL=2\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with world("UTC", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {"dense.ics": dense})
        for days in (1, 40, 400):
            ws = dt.datetime(2027, 3, 2, tzinfo=UTC) + dt.timedelta(days=days)
            we = ws + dt.timedelta(hours=3)
            exact = av.busy_intervals([av.Source("s", [av.parse_calendar(dense)])], ws, we, busy.rules())
            got = busy.busy(ws, we)
            assert exact and av.merge([*got, *exact]) == got  # a superset: nothing busy is lost


def test_a_window_past_the_horizon_keeps_no_parsed_event_alive() -> None:
    """A guard check for a booking years ahead parses the open-ended series that reach it; none
    of them may outlive the query (each was once kept in the engine's memo of recent sources,
    and 20 such checks at once took the daemon to 900 MB)."""
    import gc
    import weakref

    import icalendar

    clock = Clock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    weekly = {
        f"w{n}.ics": (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:weekly{n}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270301T{8 + n:02d}0000Z\r\n"
            f"DTEND:20270301T{8 + n:02d}3000Z\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        for n in range(3)
    }
    parsed: list[weakref.ref[icalendar.Calendar]] = []
    original = av.parse_calendar

    def tracked(text: str | bytes) -> icalendar.Calendar:
        calendar = original(text)
        parsed.append(weakref.ref(calendar))
        return calendar

    with world("UTC", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, weekly)
        meta = busy.state.busy_meta()
        assert meta is not None
        beyond = spans.from_us(int(meta["horizon"][1])) + dt.timedelta(days=400)
        ws, we = beyond.replace(hour=0, minute=0), beyond.replace(hour=0, minute=0) + dt.timedelta(days=7)
        av.parse_calendar = tracked  # type: ignore[assignment]
        try:
            found = busy.occurrences(ws, we)
        finally:
            av.parse_calendar = original  # type: ignore[assignment]
        assert found == engine_answer(busy, ws, we) and len(found) == 3
        assert len(parsed) == 3  # each series parsed, for this query only
        gc.collect()
        assert [ref for ref in parsed if ref() is not None] == []


def test_merged_busy_time_is_kept_per_week_until_the_database_changes() -> None:
    clock = Clock(dt.datetime(2027, 3, 1, tzinfo=UTC))
    texts = {
        f"{n}.ics": (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:e{n}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:202703{1 + n:02d}T100000Z\r\n"
            f"DTEND:202703{1 + n:02d}T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        for n in range(20)
    }
    with world("UTC", clock) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, texts)
        window = (dt.datetime(2027, 3, 3, tzinfo=UTC), dt.datetime(2027, 3, 17, tzinfo=UTC))
        first = busy.busy(*window)
        assert first == av.merge((max(o.start, window[0]), min(o.end, window[1])) for o in engine_answer(busy, *window))
        assert len(first) == 14
        computed = busy.blocks.computed
        assert busy.busy(*window) == first
        assert busy.busy(window[0] + dt.timedelta(days=1), window[1]) == first[1:]
        assert busy.blocks.computed == computed  # the same weeks, read once

        # An event that spans two weeks' edge, and one event fewer: the next answer sees both.
        spanning = texts["0.ics"].replace("UID:e0", "UID:long").replace("20270301T100000Z", "20270304T100000Z")
        spanning = spanning.replace("20270301T110000Z", "20270312T110000Z")
        mirror_write(busy, {"long.ics": spanning}, ["5.ics"])
        after = busy.busy(*window)
        assert after == av.merge((max(o.start, window[0]), min(o.end, window[1])) for o in engine_answer(busy, *window))
        assert after != first and busy.blocks.computed > computed
        assert (dt.datetime(2027, 3, 4, 10, tzinfo=UTC), dt.datetime(2027, 3, 12, 11, tzinfo=UTC)) in after


def test_an_occurrence_crossing_the_horizon_stays_busy_to_the_window_end() -> None:
    """Found by the property above: three-day all-day occurrences, the last starting before the
    horizon's end and ending after the week (of the merged-week memo) the horizon ends in. The
    merged busy time stopped at that week's edge, an hour short of the window's end: the years
    past the horizon leave an occurrence that starts inside it to the index."""
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//prop//EN\r\nBEGIN:VEVENT\r\nUID:a0-ev0\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270301\r\nDTEND;VALUE=DATE:20270304\r\n"
        "RRULE:FREQ=DAILY;COUNT=16\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    clock = Clock(BASE.replace(tzinfo=UTC) - spans.HORIZON_AHEAD + dt.timedelta(days=16, hours=5))
    with world("UTC", clock, allday=True, tentative=False) as busy:
        busy.store.write_appointment("a0.ics", text)
        busy.upkeep.ensure()
        ws = BASE.replace(tzinfo=UTC)
        we = ws + dt.timedelta(hours=409)  # past the horizon's end and the week it ends in
        expected = av.merge((max(o.start, ws), min(o.end, we)) for o in engine_answer(busy, ws, we))
        assert expected == [(ws, we)]
        assert busy.busy(ws, we) == expected
