"""A fresh `calmirror` process imports only what its command uses.

Start-up is most of a one-change `calmirror sync` (the pass itself is a few hundredths of a
second), so these guard the gain without timing anything: each command runs in a child process
exactly as the console script does, and the test reads which modules it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.testing.homes import connected_home

# Runs one command through the console script's entry point, then writes the loaded modules to
# stderr's last line (after whatever the command wrote), whatever its exit code.
DRIVER = (
    "import json, sys\n"
    "from calmirror.cli.main import run\n"
    "sys.argv = ['calmirror', *sys.argv[1:]]\n"
    "try:\n"
    "    run()\n"
    "finally:\n"
    "    sys.stderr.write('\\n' + json.dumps(sorted(sys.modules)) + '\\n')\n"
)

# Never needed before a command runs: typer's rich help and error drawing (rich's markdown and
# traceback modules), pydantic (typer's value checks), the web page, the daemon, the emulator.
NEVER = {
    "typer.rich_utils",
    "rich.markdown",
    "pydantic",
    "radicale.server",
    "calmirror.web",
    "calmirror.daemon",
    "calmirror.emulator",
    "jinja2",
    "watchdog",
}
# Libraries of the mirror pass: a command that runs none does not load them.
PASS_LIBRARIES = {"radicale", "requests", "lxml", "icalendar", "recurring_ical_events", "vobject", "calmirror.engine"}


def loaded(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CALMIRROR_HOME": str(home), "COLUMNS": "200"},
    )
    return result, set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_the_command_line_alone_loads_no_library_of_a_command(home: Path) -> None:
    result, modules = loaded(home, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("calmirror ")
    heavy = NEVER | PASS_LIBRARIES | {"sqlite_utils", "tomlkit", "calmirror.state", "calmirror.credentials"}
    assert modules & heavy == set()


def test_help_draws_with_typer_but_loads_no_library_of_a_command(home: Path) -> None:
    result, modules = loaded(home, "--help")
    assert result.returncode == 0, result.stderr
    assert "sync" in result.stdout
    assert "typer.rich_utils" in modules  # the help itself is drawn by it
    assert modules & (PASS_LIBRARIES | {"sqlite_utils", "pydantic", "calmirror.web"}) == set()


def test_a_usage_mistake_is_still_one_line_without_typers_error_drawing(home: Path) -> None:
    result, modules = loaded(home, "sync", "--no-such-option")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "calmirror: No such option: --no-such-option; see `calmirror sync --help`"
    assert "typer.rich_utils" not in modules


def test_only_the_named_command_is_built_and_a_mistyped_one_still_finds_its_neighbour(home: Path) -> None:
    mistyped, _ = loaded(home, "synk")
    assert mistyped.returncode == 2
    assert (
        mistyped.stderr.splitlines()[0]
        == "calmirror: No such command 'synk'. Did you mean 'sync'?; see `calmirror --help`"
    )
    in_group, _ = loaded(home, "--home", str(home), "outbox", "lst")
    assert in_group.returncode == 2
    assert in_group.stderr.splitlines()[0].startswith("calmirror: No such command 'lst'. Did you mean 'list'?")
    version, _ = loaded(home, "-v", "--version")
    assert version.stdout.startswith("calmirror ")


def test_sync_and_status_load_only_what_they_use(home: Path, emu: Emulator) -> None:
    connected_home(home, emu, conflicts=("Work", "Home"))
    first, _ = loaded(home, "sync")
    assert first.returncode == 0, first.stderr
    work = emu.calendar_id("Work")
    emu.put_item(
        work,
        "one-change.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:one-change\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n"
        "SUMMARY:One change\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )

    synced, modules = loaded(home, "sync")
    assert synced.returncode == 0, synced.stderr
    assert "Work: 1 added" in synced.stdout
    assert modules & NEVER == set()
    assert {"radicale", "requests", "calmirror.engine"} <= modules  # the pass did run here

    status, modules = loaded(home, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert {m["name"] for m in json.loads(status.stdout)["mirrors"]} == {"Work", "Home"}
    assert modules & (NEVER | PASS_LIBRARIES) == set()
