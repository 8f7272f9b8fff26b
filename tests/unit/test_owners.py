"""One owner per outside thing, held by ruff: each library may be imported only where it
belongs (pyproject.toml bans them; the owners' folders lift their own ban)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ("radicale", "sqlite_utils", "requests", "lxml")
OWNERS = {
    "daemon/calmirror/local/probe.py": {"radicale"},
    "daemon/calmirror/emulator/probe.py": {"radicale"},
    "daemon/calmirror/remote/probe.py": {"requests", "lxml"},
    "daemon/calmirror/state/probe.py": {"sqlite_utils"},
    "daemon/calmirror/probe.py": set(),
    "daemon/calmirror/availability/probe.py": set(),
    "daemon/calmirror/cli/probe.py": set(),
    "tests/integration/probe.py": set(LIBRARIES),
    "bench/probe.py": set(LIBRARIES),
}


def banned(path: str) -> set[str]:
    """The libraries ruff refuses in a module at `path` (the file need not exist)."""
    source = "".join(f"import {name}\n" for name in LIBRARIES)
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "TID251",
            "--output-format",
            "concise",
            "--stdin-filename",
            path,
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout
    return {name for name in LIBRARIES if f"`{name}` is banned" in found}


@pytest.mark.parametrize("path", sorted(OWNERS))
def test_each_library_is_imported_only_by_its_owner(path: str) -> None:
    assert banned(path) == set(LIBRARIES) - OWNERS[path]
