"""The emulator's change log: a sync token is a position, and the changes since it bring any
earlier state up to the current one (RFC 6578's contract), across a reopen too."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.emulator.changelog import LOG_NAME, ChangeLog

NAMES = st.sampled_from(["a.ics", "b.ics", "c d.ics", "e%41.ics", "ü.ics"])
OPS = st.lists(st.tuples(NAMES, st.one_of(st.none(), st.sampled_from(['"1"', '"2"', '"3"']))), max_size=30)


def _apply(state: dict[str, str], changes: list[tuple[str, str | None]]) -> dict[str, str]:
    after = dict(state)
    for name, etag in changes:
        if etag is None:
            after.pop(name, None)
        else:
            after[name] = etag
    return after


@settings(max_examples=60, deadline=None)
@given(ops=OPS, reopen_at=st.integers(min_value=0, max_value=30))
def test_changes_since_any_token_bring_that_state_to_the_current_one(
    tmp_path_factory: object, ops: list[tuple[str, str | None]], reopen_at: int
) -> None:
    folder = Path(tmp_path_factory.mktemp("log"))  # type: ignore[attr-defined]
    log = ChangeLog.create(str(folder))
    seen: list[tuple[str, dict[str, str]]] = []
    state: dict[str, str] = {}
    for index, change in enumerate(ops):
        token, everything = log.changes_since(None)
        assert dict(everything) == state
        seen.append((token, dict(state)))
        if index == reopen_at:  # a restart on the same folder keeps every token valid
            log = ChangeLog.open(str(folder), state)
        log.record([change])
        state = _apply(state, [change])
    now, _ = log.changes_since(None)
    for token, then in seen:
        position = log.position(token)
        assert position is not None
        current, changes = log.changes_since(position)
        assert current == now
        assert _apply(then, changes) == state
        assert all(state.get(name) == etag for name, etag in changes)


def test_an_unchanged_calendar_keeps_its_token_and_reports_nothing(tmp_path: Path) -> None:
    log = ChangeLog.create(str(tmp_path))
    log.record([("a.ics", '"1"')])
    token, _ = log.changes_since(None)
    assert log.changes_since(log.position(token)) == (token, [])
    log.record([("a.ics", '"2"'), ("a.ics", '"3"'), ("b.ics", '"1"'), ("b.ics", None)])
    later, changes = log.changes_since(log.position(token))
    assert later != token and changes == [("a.ics", '"3"'), ("b.ics", None)]


def test_foreign_forged_and_future_tokens_are_refused(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    one.mkdir()
    other.mkdir()
    log, elsewhere = ChangeLog.create(str(one)), ChangeLog.create(str(other))
    log.record([("a.ics", '"1"')])
    token = log.token_hex()
    assert elsewhere.position(token) is None
    assert log.position(token[:-2] + ("00" if token[-2:] != "00" else "01")) is None
    assert log.position("zz" * 32) is None and log.position("") is None
    future = ChangeLog(log.path, bytes.fromhex(token[:32]), [("x", '"1"')] * 5).token_hex()
    assert log.position(future) is None
    assert log.position(token) == 1


def test_reopening_reports_what_changed_on_disk_behind_its_back(tmp_path: Path) -> None:
    log = ChangeLog.create(str(tmp_path))
    log.record([("kept.ics", '"1"'), ("edited.ics", '"1"'), ("removed.ics", '"1"')])
    token = log.token_hex()
    again = ChangeLog.open(str(tmp_path), {"kept.ics": '"1"', "edited.ics": '"2"', "new.ics": '"1"'})
    position = again.position(token)
    assert position is not None
    _, changes = again.changes_since(position)
    assert sorted(changes, key=lambda c: c[0]) == [("edited.ics", '"2"'), ("new.ics", '"1"'), ("removed.ics", None)]


def test_a_missing_or_damaged_log_starts_a_new_generation(tmp_path: Path) -> None:
    log = ChangeLog.create(str(tmp_path))
    log.record([("a.ics", '"1"')])
    token = log.token_hex()
    (tmp_path / LOG_NAME).write_text("not a log\n")
    fresh = ChangeLog.open(str(tmp_path), {"a.ics": '"1"'})
    assert fresh.position(token) is None
    assert fresh.changes_since(None)[1] == [("a.ics", '"1"')]


def test_a_line_cut_off_by_a_crash_is_dropped_and_the_disk_wins(tmp_path: Path) -> None:
    log = ChangeLog.create(str(tmp_path))
    log.record([("a.ics", '"1"')])
    token = log.token_hex()
    with (tmp_path / LOG_NAME).open("a", encoding="utf-8") as out:
        out.write('b.ics\t"1')  # no line break: the write never finished
    again = ChangeLog.open(str(tmp_path), {"a.ics": '"1"', "b.ics": '"1"'})
    position = again.position(token)
    assert position is not None
    assert again.changes_since(position)[1] == [("b.ics", '"1"')]
    again.record([("c.ics", '"1"')])
    reread = ChangeLog.open(str(tmp_path), {"a.ics": '"1"', "b.ics": '"1"', "c.ics": '"1"'})
    assert reread.token_hex() == again.token_hex()


STEPS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.tuples(NAMES, st.one_of(st.none(), st.sampled_from(['"1"', '"2"', '"3"'])))),
        st.sampled_from([0.0, 0.0, 0.4, 1.5]),  # seconds that pass after the write
        st.sampled_from(["none", "sync", "sync", "full"]),  # what the client does then
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(steps=STEPS)
def test_a_lagging_listing_hides_fresh_writes_and_loses_no_change(
    tmp_path_factory: object, steps: list[tuple[tuple[str, str | None] | None, float, str]]
) -> None:
    """Under a listing lag a client syncing by token, or listing in full, never sees a write
    younger than the lag, and once the lag has passed one sync from its token brings it to
    exactly the calendar's state: iCloud lists late, it does not lose changes."""
    folder = Path(tmp_path_factory.mktemp("lag"))  # type: ignore[attr-defined]
    log = ChangeLog.create(str(folder))
    now = [100.0]
    log.clock = lambda: now[0]
    log.lag_s = 1.0
    state: dict[str, str] = {}
    written: dict[str, float] = {}
    token, seen = log.changes_since(None)
    mirror = dict(seen)
    for write, passes, does in steps:
        if write is not None:
            log.record([write])
            state = _apply(state, [write])
            if write[1] is not None:
                written[write[0]] = now[0]
        now[0] += passes
        fresh = {name for name, at in written.items() if now[0] - at < 1.0 and name in state}
        if does == "full":
            token, listed = log.changes_since(None)
            assert dict(listed) == {n: e for n, e in state.items() if n not in fresh}
            mirror = dict(listed)
        elif does == "sync":
            position = log.position(token)
            assert position is not None
            token, changes = log.changes_since(position)
            assert not {name for name, _ in changes} & fresh
            mirror = _apply(mirror, changes)
    now[0] += 1.0
    position = log.position(token)
    assert position is not None
    assert _apply(mirror, log.changes_since(position)[1]) == state
