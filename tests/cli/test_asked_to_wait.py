"""iCloud answering 503 with Retry-After for a while, as a user meets it from the command line.

Each line says what happened and what comes next: a wait is not an outage, `sync` run by hand
retries nothing by itself, and a chosen calendar the wait kept from its first pass is named.
"""

from __future__ import annotations

import json
from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.testing.homes import connected_home
from tests.conftest import Cli


def test_a_server_asking_to_wait_is_said_as_a_wait_with_its_end(cli: Cli, emu: Emulator, home: Path) -> None:
    connected_home(home, emu, conflicts=("Work", "Home"))
    emu.faults.fail(count=50, status=503, retry_after=120)

    first = cli("sync")
    assert first.returncode == 4
    assert "Traceback" not in first.stderr
    work, home_line = first.stdout.splitlines()
    assert work.startswith("Work: failed: ") and work.endswith(
        "503 Service Unavailable; the server asked to wait 120 s"
    )
    assert home_line.startswith("Home: failed: the server asked to wait; nothing is sent to it for 1")
    assert "retrying" not in first.stdout  # a sync run by hand retries nothing by itself
    # Each failure once, in the summary; stderr says what comes next (it also had an ERROR
    # log line per calendar, repeating the summary with a timestamp).
    assert first.stderr.splitlines() == [
        "calmirror: 2 of 2 calendars could not be synced (above); what was synced is kept, and the next "
        "`calmirror sync` (or the running daemon) tries again"
    ]

    shown = cli("status")
    assert shown.returncode == 0, shown.stderr
    (account,) = [line for line in shown.stdout.splitlines() if line.startswith("iCloud: ")]
    assert "asked to wait: nothing is sent to it before " in account and "unreachable" not in account
    assert "Not mirrored yet: Home (run `calmirror sync` or `calmirror run`)" in shown.stdout
    assert "Recent errors:" in shown.stdout

    data = json.loads(cli("status", "--json").stdout)
    assert data["connection"]["state"] == "unreachable" and 100 < data["connection"]["retry_in"] <= 120
    assert [m["name"] for m in data["not_mirrored_yet"]] == ["Home"]
    assert [m["name"] for m in data["mirrors"]] == ["Work"]


def test_verbose_keeps_the_log_line_of_each_failed_calendar(cli: Cli, emu: Emulator, home: Path) -> None:
    connected_home(home, emu, conflicts=("Work",))
    emu.faults.fail(count=5, status=503, retry_after=None)
    verbose = cli("--verbose", "sync")
    assert verbose.returncode == 4
    assert "ERROR   calmirror.engine: sync Work failed: " in verbose.stderr
    assert verbose.stderr.rstrip().endswith("tries again")


def test_doctor_does_not_blame_the_network_for_a_server_that_answers_5xx(cli: Cli, emu: Emulator, home: Path) -> None:
    """doctor said "503 Service Unavailable; check the network and `icloud.server`": the server
    answered, so neither is to blame."""
    connected_home(home, emu, conflicts=("Work",))
    for retry_after, said in ((120, "the server asked to wait 120 s"), (None, "the server answered")):
        emu.faults.clear()
        emu.faults.fail(count=50, status=503, retry_after=retry_after)
        checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)}
        detail = checks["iCloud"]["detail"]
        assert not checks["iCloud"]["ok"] and "503" in detail and said in detail, detail
        assert "check the network" not in detail and "tries again by itself" in detail
