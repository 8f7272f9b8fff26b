"""A full disk, for real: a home on a small tmpfs. Each command says so in one line and exits 5,
doctor names the disk (not the file watcher), and once there is room again the next sync
finishes the mirror with nothing lost. Needs root, to mount the tmpfs; skipped without it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.emulator.seed import generated_items
from tests.cli.test_cli_foundation import connect, one_clean_line
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs root to mount a small tmpfs ({mounted.stderr.strip()})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def emu_1500() -> Iterator[Emulator]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emulator:
        emulator.bulk_load(emulator.calendar_id("Work"), generated_items(1500, date.today()))
        yield emulator


def test_a_full_disk_is_one_line_and_the_next_sync_loses_nothing(small_disk: Path, emu_1500: Emulator) -> None:
    cli = Cli(small_disk / "home")
    assert connect(cli, emu_1500).returncode == 0
    assert cli("link", "Work").returncode == 0
    for _ in range(2):  # the second run starts on the disk the first one filled
        full = cli("sync", timeout=300)
        assert full.returncode == 5, full.stdout + full.stderr
        # The second run may first say it cleared the batch the first one left half-written
        # (a log warning); the failure itself is still one line, with no traceback or secret.
        said = full.stderr.splitlines()
        recovered = [x for x in said if x.startswith("warning: ") and "stray item" in x]
        rest = "\n".join(x for x in said if x not in recovered)
        line = one_clean_line(subprocess.CompletedProcess(full.args, full.returncode, full.stdout, rest))
        assert "disk is full" in line or "No space left on device" in line
        assert "internal error" not in line
    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert not checks["disk"]["ok"]
    assert "inotify" not in json.dumps(checks["watcher"])  # the watcher is not to blame

    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    done = cli("sync", timeout=300)
    assert done.returncode == 0, done.stderr
    mirrored = small_disk / "home" / "store" / "collection-root" / "calmirror" / "icloud-work"
    assert len(list(mirrored.glob("*.ics"))) == len(emu_1500.items(emu_1500.calendar_id("Work")))
    status = json.loads(cli("status", "--json").stdout)
    work = next(m for m in status["mirrors"] if m["name"] == "Work")
    assert work["items"] == len(emu_1500.items(emu_1500.calendar_id("Work"))) and work["last_error"] is None


def test_the_state_database_on_a_full_disk_says_so(small_disk: Path) -> None:
    """SQLite rolls a transaction back by itself on SQLITE_FULL; the state must still say why."""
    from calmirror.errors import LocalError
    from calmirror.state import State

    state = State(small_disk / "state.db")
    try:
        with pytest.raises(LocalError, match=r"is the disk full\? Free some space"), state.transaction() as db:
            db.execute("CREATE TABLE filler (x BLOB)")
            for _ in range(64):  # 4 MB on a 2 MB disk
                db.execute("INSERT INTO filler VALUES (?)", [b"x" * 65536])
        assert "filler" not in state.db.table_names()  # rolled back whole
    finally:
        state.close()
