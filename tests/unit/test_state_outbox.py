"""The durable outbox on a real SQLite file: collapse, in-flight recovery, no lost edit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from calmirror.state import State


def test_repeated_edits_collapse_to_one_row(tmp_path: Path) -> None:
    state = State(tmp_path / "s.db")
    for _ in range(5):
        state.enqueue("u1")
    rows = state.outbox()
    assert len(rows) == 1 and rows[0].seq == 5 and rows[0].state == "pending"


def test_an_edit_during_the_push_is_not_marked_done(tmp_path: Path) -> None:
    state = State(tmp_path / "s.db")
    state.enqueue("u1", now=0)
    (row,) = state.claim(now=1)
    state.enqueue("u1", now=2)  # the client edits again while the old version is in flight
    assert state.finish(row) is False
    assert [r.state for r in state.outbox()] == ["pending"]
    (again,) = state.claim(now=3)
    assert state.finish(again) is True
    assert state.outbox() == []


def test_rows_in_flight_at_a_crash_are_retried(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    state = State(path)
    state.enqueue("u1", now=0)
    state.claim(now=1)
    state.db.conn.close()  # the process dies here
    reopened = State(path)
    assert reopened.recover_in_flight() == 1
    assert [r.uid for r in reopened.claim(now=2)] == ["u1"]


def test_backoff_and_failure_states(tmp_path: Path) -> None:
    state = State(tmp_path / "s.db")
    state.enqueue("u1", now=0)
    (row,) = state.claim(now=0)
    state.retry_later(row, next_attempt=100, error="503")
    assert state.claim(now=50) == []
    (row,) = state.claim(now=100)
    state.fail(row, "UID already in another calendar")
    failed = state.outbox(("failed",))
    assert failed[0].last_error == "UID already in another calendar" and failed[0].attempts == 2
    assert state.requeue_failed() == 1
    assert [r.uid for r in state.claim(now=100)] == ["u1"]


def test_state_file_is_private(tmp_path: Path) -> None:
    State(tmp_path / "s.db").close()
    State(tmp_path / "s.db").close()
    assert (tmp_path / "s.db").stat().st_mode & 0o777 == 0o600


def test_processes_opening_a_new_state_at_once_all_succeed(tmp_path: Path) -> None:
    """`calmirror run` and a CLI command started together on a new home both create the schema;
    before it ran in one IMMEDIATE transaction, about one start in four failed with
    "database is locked"."""
    path = tmp_path / "state.sqlite"
    code = (
        "import sys, time; from pathlib import Path; from calmirror.state import State; "
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); State(Path(sys.argv[2])).close()"
    )
    for _ in range(4):
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        start = str(time.time() + 1.5)  # every child is imported and waiting by then
        children = [
            subprocess.Popen([sys.executable, "-c", code, start, str(path)], stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        failures = [child.communicate()[1] for child in children if child.wait(60) != 0]
        assert not failures, failures[0][-500:]
