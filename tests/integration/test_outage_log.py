"""iCloud out for a while, as the daemon's journal and `status` tell it: the failure of each
calendar once when it begins (not three lines a minute for the whole outage), and one line
when iCloud answers again."""

from __future__ import annotations

import logging

import pytest

from calmirror.emulator import Emulator
from tests.integration.faulty import Faulty


def test_an_outage_is_logged_when_it_begins_and_when_it_ends(
    faulty: Faulty, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="calmirror")
    calmirror = logging.getLogger("calmirror")
    added = not calmirror.propagate  # once `logs.setup` ran in this process, its records stop there
    if added:
        calmirror.addHandler(caplog.handler)
    try:
        emu.faults.fail(count=10_000, status=503, retry_after=None, method="REPORT")
        for _ in range(3):
            reports = faulty.mirror_now()
            assert all(r.error and "503" in r.error for r in reports.values())
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert sorted(m.split(" failed:")[0] for m in said) == ["sync Home", "sync Work"], said
        recent = [e["message"] for e in faulty.status()["recent_errors"] if e["kind"] == "mirror"]
        assert sorted(m.split(":")[0] for m in recent) == ["Home", "Work"], recent

        emu.faults.clear()
        assert all(r.error is None for r in faulty.mirror_now().values())
        assert "iCloud answers again" in [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert faulty.status()["connection"]["state"] == "ok"
    finally:
        if added:
            calmirror.removeHandler(caplog.handler)
