"""A request sent with the old password and answered 401 only after the user reconnected says
nothing about the new password: it must not hold the account until the next reconnect."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from calmirror import credentials
from calmirror.emulator import Emulator
from calmirror.errors import AuthFailed
from calmirror.health import Health
from calmirror.state import State
from tests.helpers import APPLE_ID, event, wait_for
from tests.integration.faulty import Faulty

STALE = "a 401 to a request sent with the password before the reconnect; not held"


def test_a_slow_old_requests_401_after_a_reconnect_holds_nothing(
    faulty: Faulty, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    emu.faults.delay(6.0, count=1, method="PUT")  # the next write stalls inside iCloud
    assert faulty.run.put("slow.ics", event("slow-1", "Sent with the old password")).status_code == 201
    assert wait_for(lambda: emu.faults.pending() == 0, 10)  # it arrived, with the old password, and waits
    # Meanwhile the user revokes that password, makes a new one and reconnects.
    new_password = "wxyz-wxyz-wxyz-wxyz"
    emu.set_password(new_password)
    credentials.store_icloud_password(faulty.run.home, APPLE_ID, new_password)
    faulty.run.daemon.reload_requested.set()
    assert wait_for(lambda: "configuration reloaded" in caplog.text, 5)
    # Only now is the old request answered: 401, since the emulator knows only the new password.
    assert wait_for(lambda: faulty.pushed("slow-1", "Sent with the old password"), 30)
    assert [r.status for r in emu.requests if r.method == "PUT"] == [401, 201]
    messages = [r.getMessage() for r in caplog.records]
    assert messages.index("configuration reloaded") < next(i for i, m in enumerate(messages) if STALE in m)
    assert faulty.status()["connection"]["state"] == "ok"  # never held
    report = faulty.mirror_now()
    assert report and all(r.error is None for r in report.values())


def test_only_a_401_to_an_older_credentials_generation_is_stale(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    try:
        health = Health(state)
        health.renew_credentials()  # a reconnect: generation 1
        assert not health.failed(AuthFailed("refused", status=401, generation=0))
        assert not health.blocked and (state.get_meta("health") or {}).get("state") != "auth_failed"
        assert health.failed(AuthFailed("refused", status=401, generation=1))
        assert health.blocked and (state.get_meta("health") or {})["state"] == "auth_failed"
        health.reset_auth()
        assert health.failed(AuthFailed("refused", status=401))  # a client outside the daemon's: counted
        assert health.blocked
    finally:
        state.close()
