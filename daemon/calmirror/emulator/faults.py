"""Scripted misbehaviour: the next N matching requests fail, stall or are cut off.

iCloud answers 503 with Retry-After (sometimes after ~30 s, sometimes with a cut-off
body), takes 30-35 s for large fetches and drops connections; tests arm these here
and the server applies them before the request reaches the layer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Fault:
    kind: str  # "fail" | "delay" | "reset"
    remaining: int
    method: str | None = None
    path_contains: str | None = None
    status: int = 503
    retry_after: int | None = None
    truncate_body: bool = False
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass(frozen=True)
class ArmedFaults:
    """What to do to one request: an optional stall, then an optional failure."""

    delay: Fault | None
    terminal: Fault | None


class Faults:
    """Thread-safe registry; each matching request uses up one count of a fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def fail(
        self,
        count: int = 1,
        status: int = 503,
        retry_after: int | None = 120,
        method: str | None = None,
        path_contains: str | None = None,
        truncate_body: bool = False,
    ) -> None:
        self._add(
            Fault(
                "fail",
                count,
                method,
                path_contains,
                status=status,
                retry_after=retry_after,
                truncate_body=truncate_body,
            )
        )

    def delay(
        self, seconds: float, count: int = 1, method: str | None = None, path_contains: str | None = None
    ) -> None:
        self._add(Fault("delay", count, method, path_contains, seconds=seconds))

    def reset(self, count: int = 1, method: str | None = None, path_contains: str | None = None) -> None:
        self._add(Fault("reset", count, method, path_contains))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> int:
        """How many faulted requests are still armed (all kinds together)."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def take(self, method: str, path: str) -> ArmedFaults:
        """Consume the first matching delay and the first matching fail/reset."""
        with self._lock:
            delay = self._consume(method, path, ("delay",))
            terminal = self._consume(method, path, ("fail", "reset"))
        return ArmedFaults(delay, terminal)

    def _add(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)

    def _consume(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        for fault in self._faults:
            if fault.kind in kinds and fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None
