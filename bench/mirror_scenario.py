"""What `bench_mirror` and the benches built on it share: the emulator calendar with its
corpus and everything set up around it (`Scenario`), and what the emulator saw (`Traffic`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common import Report

from calmirror.emulator import Emulator
from calmirror.home import Home

if TYPE_CHECKING:
    from mirror_passes import BaseRow
    from mirror_vdirsyncer import VdirPair

VDIRSYNCER_PEER = "vdirsyncer"
CHILD_TIMEOUT_S = 900.0


@dataclass
class Traffic:
    """What the emulator (our iCloud) saw during one step."""

    requests: int
    request_bytes: int
    response_bytes: int
    methods: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, emu: Emulator) -> Traffic:
        logged = emu.requests
        methods: dict[str, int] = {}
        for r in logged:
            methods[r.method] = methods.get(r.method, 0) + 1
        return cls(len(logged), sum(r.request_bytes for r in logged), sum(r.response_bytes for r in logged), methods)

    def methods_text(self) -> str:
        return " ".join(f"{m}×{n}" for m, n in sorted(self.methods.items()))


@dataclass
class Scenario:
    """One emulator calendar with the corpus in it, and everything the benches set up around it."""

    emu: Emulator
    root: Path
    events: list[tuple[str, str]]
    work_id: str
    report: Report
    label: str
    home: Home | None = None
    base_code: str | None = None  # the base revision's daemon/ folder, when compared with one
    base_home: Home | None = None
    base_rows: list[BaseRow] = field(default_factory=list)
    vdir: VdirPair | None = None
    vdir_synced: bool = False
    busy_index: bool = False  # each pass builds the busy index first, as the daemon does

    @property
    def size(self) -> int:
        return len(self.events)
