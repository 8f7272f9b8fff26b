"""What one mirror pass of one calendar did, as `calmirror sync` prints it and `--json` gives it.

Kept apart from the pass itself (`mirror.py`) so the command line, the engine and the
benchmarks can read a report without the machinery that makes one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

Progress = Callable[[str, int, int], None]  # (calendar name, done, total)


class LoggedProgress:
    """A long pass says how far it got every `every_s` seconds: the daemon's first mirror of
    10,000 events logged nothing between "listening" and "serving" (seconds here, minutes at
    100,000), so a user watching the journal could not tell it from a hang."""

    def __init__(
        self, say: Callable[[str], None], every_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.say, self.every_s, self.clock = say, every_s, clock
        self._next: dict[str, float] = {}  # calendar name -> when it may be said again

    def __call__(self, name: str, done: int, total: int) -> None:
        now = self.clock()
        due = self._next.setdefault(name, now + self.every_s)  # the first call starts the clock
        if done >= total:
            self._next.pop(name, None)
        elif now >= due:
            self._next[name] = now + self.every_s
            self.say(f"mirroring {name}: {done:,} of {total:,} objects")


@dataclass
class SyncReport:
    calendar_id: str
    name: str
    slug: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    full: bool = False
    held_empty: bool = False
    error: str | None = None
    skipped_reasons: dict[str, str] = field(default_factory=dict)
    # after the pass: exact / compatible / withheld / unreadable counts and their reasons
    copies: dict[str, int] = field(default_factory=dict)
    copy_reasons: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: failed: {self.error}"
        if self.held_empty:
            return (
                f"{self.name}: iCloud lists no events; the mirror was kept "
                f'(run `calmirror sync --accept-empty "{self.name}"` if that is right)'
            )
        line = (
            f"{self.name}: {self.added} added, {self.updated} updated, {self.deleted} deleted, {self.skipped} skipped"
        )
        shown = [f"{self.copies[k]} {k}" for k in ("compatible", "withheld", "unreadable") if self.copies.get(k)]
        return line + (f" ({', '.join(shown)})" if shown else "")
