"""Helpers for real third-party clients against the real daemon and the iCloud emulator.

The daemon comes from the shared `running` fixture (tests/conftest.py, the harness in
tests/helpers.py): in-process, on a home connected to the sample emulator, Work linked and
Work + Home mirrored. Tools that are installed into the same environment as pytest are found
beside the interpreter first, so `.venv/bin/pytest` finds `.venv/bin/vdirsyncer`
without the venv on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from calmirror.emulator import Emulator

#: Methods that change something on a CalDAV server.
WRITE_METHODS = frozenset({"PUT", "DELETE", "PROPPATCH", "MKCOL", "MKCALENDAR", "MOVE", "COPY"})


def find_tool(name: str) -> str | None:
    """The executable `name`: beside this interpreter (same venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def require_tool(name: str, package: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install {package})")
    return path


def emulator_writes(emu: Emulator) -> list[tuple[str, str, int]]:
    """Every write request the emulator (iCloud) received so far: (method, path, status)."""
    return [(r.method, r.path, r.status) for r in emu.requests if r.method in WRITE_METHODS]


def private_env(root: Path) -> dict[str, str]:
    """An environment whose home and XDG folders are all under `root`, never the real ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    folders = {
        "HOME": "home",
        "XDG_CONFIG_HOME": "config",
        "XDG_DATA_HOME": "data",
        "XDG_CACHE_HOME": "cache",
        "XDG_STATE_HOME": "state",
    }
    for var, sub in folders.items():
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env.update(TZ="UTC", LC_ALL="C.UTF-8", LANG="C.UTF-8", PYTHONIOENCODING="utf-8")
    return env
