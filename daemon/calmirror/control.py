"""Talking to a running daemon: a pid file and two signals.

SIGHUP reloads the config and credentials; SIGUSR1 asks for a sync pass now. Simple,
local, and nothing to authenticate: only the same user (or root) may signal the process.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def write_pid(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n", encoding="utf-8")
    path.chmod(0o600)


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def remove_pid(path: Path) -> None:
    try:
        if read_pid(path) in (None, os.getpid()):
            path.unlink(missing_ok=True)
    except OSError:
        pass


def signal_daemon(path: Path, signum: signal.Signals) -> bool:
    pid = read_pid(path)
    if pid is None:
        return False
    try:
        os.kill(pid, signum)
    except OSError:
        return False
    return True
