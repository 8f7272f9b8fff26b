"""Shared fixtures: real servers on loopback, a private home per test, the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:  # imported where used: collecting the unit tests needs neither the emulator nor the daemon
    from calmirror.emulator import Emulator
    from tests.helpers import Running

FIXTURES = Path(__file__).parent / "fixtures" / "icloud"

# CI (`.ci/run` sets HYPOTHESIS_PROFILE=ci) runs the same examples every time, so a red run is
# the change's and not a rare draw; a failure prints the blob that replays it. A developer's run
# keeps the default profile's random exploration, which is what finds new cases.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the long crash and load tests")
    parser.addoption("--run-interop", action="store_true", help="run third-party client tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for flag, mark in (("--run-slow", "slow"), ("--run-interop", "interop")):
        if config.getoption(flag):
            continue
        skip = pytest.mark.skip(reason=f"needs {flag}")
        for item in items:
            if item.get_closest_marker(mark) is not None:
                item.add_marker(skip)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A fresh iCloud emulator with the sample account (Work, Home, ...) for each test."""
    from calmirror.emulator import Emulator
    from tests.helpers import APP_PASSWORD, APPLE_ID

    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emulator:
        yield emulator


@pytest.fixture
def running(tmp_path: Path, emu: Emulator) -> Iterator[Running]:
    """The daemon in a thread, on a home in `tmp_path/calmirror` (the rest of tmp_path stays the test's)
    connected to `emu`, Work linked, Work and Home mirrored."""
    from tests.helpers import connected_home, daemon_running

    with daemon_running(connected_home(tmp_path / "calmirror", emu, conflicts=("Work", "Home"))) as run:
        yield run


class Cli:
    """Runs `calmirror` in a child process exactly as a user would."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "CALMIRROR_HOME": str(self.home), "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "calmirror", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)
