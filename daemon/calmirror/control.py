"""Talking to a running daemon: one lock per home, a pid/URL record and two signals.

The daemon holds an exclusive `flock` on `daemon.lock` for its whole life. The kernel
drops it on any death, so a second daemon on the same home learns at once that one runs,
with no stale-pid guessing. The lock file itself is never deleted: deleting a locked file
would let a newcomer lock a fresh file of the same name beside the holder.

`daemon.pid` holds the pid and the URL for other commands; only the process that wrote it
removes it. SIGHUP reloads the config and credentials; SIGUSR1 asks for a sync pass now.
Only the same user (or root) may signal the process, so there is nothing to authenticate.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from calmirror.errors import AlreadyRunning, LocalError


@dataclass(frozen=True)
class Record:
    pid: int
    url: str


class HomeLock:
    """The exclusive lock on one home, held from `acquire` until `release` or death."""

    def __init__(self, lock_file: Path, pid_file: Path, home_dir: Path) -> None:
        self.lock_file, self.pid_file, self.home_dir = lock_file, pid_file, home_dir
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        try:
            handle = open(self.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held for the daemon's life
        except OSError as exc:
            raise LocalError(f"{self.lock_file}: cannot open the lock file ({exc.strerror})") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _parse(handle.read())
            handle.close()
            record = read_record(self.pid_file) or holder
            raise AlreadyRunning(
                str(self.home_dir), record.pid if record else None, record.url if record else ""
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the only descriptor drops the flock
            self._handle = None


def _parse(text: str) -> Record | None:
    lines = text.splitlines()
    try:
        pid = int(lines[0].strip())
    except (IndexError, ValueError):
        return None
    return Record(pid, lines[1].strip() if len(lines) > 1 else "")


def write_record(path: Path, url: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n{url}\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def read_record(path: Path) -> Record | None:
    """The record of a live daemon, or None (no file, garbage, or a dead pid)."""
    try:
        record = _parse(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    if record is None:
        return None
    try:
        os.kill(record.pid, 0)
    except PermissionError:
        return record  # alive, another user's
    except OSError:
        return None
    return record


def read_pid(path: Path) -> int | None:
    record = read_record(path)
    return record.pid if record else None


def remove_record(path: Path) -> None:
    """Remove the record only if this process wrote it."""
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8")
        record = _parse(text)
        if record is not None and record.pid == os.getpid():
            path.unlink(missing_ok=True)


def signal_daemon(path: Path, signum: signal.Signals) -> bool:
    pid = read_pid(path)
    if pid is None:
        return False
    try:
        os.kill(pid, signum)
    except OSError:
        return False
    return True
