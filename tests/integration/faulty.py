"""The real daemon on a home connected to the emulator, driven and observed by the fault tests:
its mirror loop runs only when a test wakes it, and each pass's reports are kept."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import requests

from calmirror import config, status
from calmirror.emulator import Emulator
from calmirror.state import State
from tests.helpers import Running, connected_home, event, start_daemon, wait_for

QUIET = "\n[sync]\ninterval = 3600\n[push]\nmax_backoff = 1\n"  # the mirror runs only when a test wakes it


class Faulty:
    """A running daemon plus what the tests need to drive and observe it."""

    def __init__(self, run: Running, emu: Emulator) -> None:
        self.run, self.emu = run, emu
        self.passes: list[list[Any]] = []
        self._lock = threading.Lock()
        engine = run.daemon.engine
        original = engine.mirror_pass

        def counting(*args: Any, **kw: Any) -> Any:
            reports = original(*args, **kw)
            with self._lock:
                self.passes.append(reports)
            return reports

        engine.mirror_pass = counting  # type: ignore[method-assign]

    def mirror_now(self, timeout: float = 15) -> dict[str, Any]:
        """Wake the daemon's mirror loop and wait for its pass; returns the reports by calendar name."""
        before = len(self.passes)
        self.run.daemon.mirror_wake.set()
        assert wait_for(lambda: len(self.passes) > before, timeout), "no mirror pass"
        return {r.name: r for r in self.passes[-1]}

    def status(self) -> dict[str, Any]:
        state = State(self.run.home.state_db)
        try:
            return status.gather(self.run.home, config.load(self.run.home.config_file), state)
        finally:
            state.close()

    def copies(self, uid: str, calendar: str = "Work") -> list[str]:
        return [b for b in self.emu.items(self.emu.calendar_id(calendar)).values() if f"UID:{uid}\r\n" in b]

    def pushed(self, uid: str, summary: str, calendar: str = "Work") -> bool:
        copies = self.copies(uid, calendar)
        return len(copies) == 1 and f"SUMMARY:{summary}\r\n" in copies[0]

    def serves_locally(self, limit_s: float = 2.0) -> bool:
        """A client can read and write at once, whatever iCloud is doing."""
        started = time.monotonic()
        listing = requests.request(
            "PROPFIND",
            f"{self.run.url}{self.run.auth[0]}/",
            auth=self.run.auth,
            headers={"Depth": "1"},
            timeout=limit_s,
        )
        probe = f"probe-{time.monotonic_ns()}"
        put = self.run.put(f"{probe}.ics", event(probe, "Probe"), collection="blocked")
        got = requests.get(self.run.href("blocked", f"{probe}.ics"), auth=self.run.auth, timeout=limit_s)
        return (
            listing.status_code == 207
            and put.status_code == 201
            and got.status_code == 200
            and time.monotonic() - started < limit_s
        )

    def mirror_matches(self, calendar: str, slug: str) -> bool:
        remote = {
            b.split("UID:", 1)[1].split("\r\n", 1)[0] for b in self.emu.items(self.emu.calendar_id(calendar)).values()
        }
        local = {
            b.split("UID:", 1)[1].split("\r\n", 1)[0]
            for b in self.run.daemon.engine.store.items(f"icloud-{slug}").values()
        }
        appointments = set(self.run.daemon.state.appointments())
        return local == remote - appointments


def daemon(tmp_path: Path, emu: Emulator, extra: str = "", conflicts: tuple[str, ...] = ("Work", "Home")) -> Faulty:
    home = connected_home(tmp_path, emu, conflicts=conflicts, extra_config=QUIET + extra)
    return Faulty(start_daemon(home), emu)
