"""Shared fixtures: real servers on loopback, a private home per test, the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "icloud"
APPLE_ID = "me@example.com"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


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
def emulator() -> Iterator[object]:
    from calmirror.emulator import Emulator

    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu:
        yield emu


class Cli:
    """Runs `calmirror` in a child process exactly as a user would."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "CALMIRROR_HOME": str(self.home), "COLUMNS": "200", **(env or {})}
        return subprocess.run([sys.executable, "-m", "calmirror", *args], input=input, capture_output=True,
                              text=True, timeout=timeout, env=full_env)


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)
