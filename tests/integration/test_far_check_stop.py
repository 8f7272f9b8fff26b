"""A guard check past the busy index's horizon (mode "warn") that a stop interrupts is not
lost: the daemon keeps the booking and checks it again at its next start, and the check cut
off by the closed database is not reported as a failure."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from calmirror import daemon as daemon_module
from calmirror.emulator import Emulator
from calmirror.state import State
from tests.helpers import connected_home, event, start_daemon, wait_for

WEEKLY = event(
    "standup@local", "Stand-up", start="20261207T100000Z", end="20261207T110000Z", extra="RRULE:FREQ=WEEKLY\r\n"
)
FAR_CLASH = event("far@local", "Far call", start="20311208T101500Z", end="20311208T104500Z")  # a Monday, 5 years on


def warned(state_db: Path) -> list[str]:
    state = State(state_db)
    try:
        return [row["uid"] for row in state.guard_warnings()]
    finally:
        state.close()


def test_a_far_check_a_stop_interrupts_runs_at_the_next_start(
    tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(daemon_module, "STOP_GRACE_S", 1.0)  # the stop's wait for far checks runs out
    home = connected_home(tmp_path, emu, extra_config='\n[availability]\nguard = "warn"\n')
    run = start_daemon(home)
    held = threading.Event()
    try:
        assert run.put("standup.ics", WEEKLY, collection="blocked").status_code == 201
        run.daemon.far_checks.submit(held.wait)  # the far-check thread busy when the booking comes
        assert run.put("far.ics", FAR_CLASH).status_code == 201  # answered at once; its check queued
    finally:
        with caplog.at_level(logging.INFO, logger="calmirror.guard"):
            run.stop()  # while the check has not run
            held.set()  # it runs now, on a closed database
            assert wait_for(lambda: "stopped with the daemon" in caplog.text)
    assert warned(home.state_db) == []
    assert "check(s) past the busy index's horizon failed" not in caplog.text

    again = start_daemon(home)
    try:
        assert wait_for(lambda: warned(home.state_db) == ["far@local"], timeout=60)
    finally:
        again.stop()
