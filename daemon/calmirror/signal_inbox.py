"""Signals received without taking a lock in the handler.

Python runs a signal handler on the main thread between two bytecodes, possibly in the
middle of `threading.Event.set()` or `.wait()`, which hold the event's (non-reentrant)
lock: a handler that sets an Event can then wait for itself forever. This happened: two
SIGTERMs close together left `calmirror run` hung after "stopping". Here the handler only
appends to a list and writes one byte to a pipe; the main loop sleeps on that pipe and acts
on the signals outside the handler.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from types import FrameType


class SignalInbox:
    def __init__(self, signals: tuple[signal.Signals, ...]) -> None:
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self._received: list[int] = []
        for number in signals:
            signal.signal(number, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._received.append(signum)  # list.append takes no lock Python code could be holding
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def poke(self) -> None:
        """Wake `wait` from another thread (a stop requested in-process)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> list[int]:
        """The signals received, waiting up to `timeout` seconds for one."""
        if not self._received:
            with contextlib.suppress(InterruptedError):
                select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 512):
                pass
        received = []
        while self._received:
            received.append(self._received.pop(0))
        return received

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
