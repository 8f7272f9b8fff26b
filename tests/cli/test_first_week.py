"""What a new user meets in the first week: help, typos, missing homes, JSON, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.testing.homes import connected_home
from tests.cli.test_cli_foundation import connect, one_clean_line
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID, emulator_serve, wait_for


def test_bare_calmirror_prints_help_and_succeeds(cli: Cli) -> None:
    result = cli()
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "availability" in result.stdout and not result.stderr


def test_help_lists_the_commands_in_the_order_a_newcomer_needs_them(cli: Cli) -> None:
    """The help listed commands as the modules registered them: demo twelfth, conflicts after
    week. Every command has a place in `PANELS`, so a new one cannot drift to the end."""
    from calmirror.cli import main

    placed = [name for names in main.PANELS.values() for name in names]
    registered = [c.name or main._command_of(c) for c in main.app.registered_commands]
    assert sorted(placed) == sorted([*registered, *(g.name for g in main.app.registered_groups)])
    shown = cli("--help").stdout
    headings = [line.split("─ ")[1].split(" ─")[0] for line in shown.splitlines() if line.startswith("╭─ ")]
    assert headings == ["Options", *main.PANELS]
    first_words = [line.split()[1] for line in shown.splitlines() if line.startswith("│ ") and line[2:3].isalpha()]
    assert first_words[:3] == ["demo", "connect", "calendars"]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["sync"],
        ["status"],
        ["calendars"],
        ["demo"],
        ["availability"],
        ["run"],
        ["week"],
        ["conflicts", "add"],
        ["feeds", "poll"],
        ["emulator", "serve"],
    ],
)
def test_help_shows_what_a_value_is_not_a_python_type(cli: Cli, command: list[str]) -> None:
    """No type for a flag (typer printed `<bool>`), one value's type for a value given many
    times (it printed `<list[str]>`) and a bounded number's type (`<int range>`)."""
    result = cli(*command, "--help")
    assert result.returncode == 0
    assert "--help" in result.stdout
    for python_words in ("<bool>", "list[", " range>"):
        assert python_words not in result.stdout


def test_a_mistyped_calendar_suggests_the_closest_name(cli: Cli, emu: Emulator) -> None:
    assert connect(cli, emu).returncode == 0
    result = cli("link", "Wrok")
    assert result.returncode == 2
    assert "did you mean 'Work'?" in one_clean_line(result)
    far = cli("conflicts", "add", "Zzzzzz")
    assert far.returncode == 2 and "did you mean" not in one_clean_line(far)


def test_privacy_refuses_a_calendar_that_is_not_a_conflict_calendar(cli: Cli, emu: Emulator, home: Path) -> None:
    assert connect(cli, emu).returncode == 0
    assert cli("conflicts", "add", "Work").returncode == 0
    result = cli("privacy", "Home", "busy")
    assert result.returncode == 2 and "is not a conflict calendar" in one_clean_line(result)
    assert "Home" not in (home / "config.toml").read_text().split("[calendars", 1)[-1]
    assert cli("privacy", "Work", "busy").returncode == 0
    # A reminders list is said as such, not sent to `conflicts add`, which would refuse it too.
    reminders = one_clean_line(cli("privacy", "Reminders", "busy"))
    assert "holds reminders" in reminders and "conflicts add" not in reminders


def test_status_when_not_connected_says_what_to_do(cli: Cli, home: Path) -> None:
    result = cli("status")
    assert result.returncode == 0
    assert "not connected: not connected" not in result.stdout
    assert "iCloud: not connected; run `calmirror connect --apple-id EMAIL`" in result.stdout
    assert "(daemon not running; start it with `calmirror run`)" in result.stdout


def test_doctor_when_not_connected_says_what_to_do_on_every_problem_line(cli: Cli, home: Path) -> None:
    assert cli("feed", "enable").returncode == 0  # a home with its state, and no account
    result = cli("doctor")
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem")]
    assert [line.split(":")[0] for line in problems] == ["problem  credentials", "problem  iCloud"]
    assert all("run `calmirror connect --apple-id EMAIL`" in line for line in problems), problems


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["doctor"],
        ["local-account"],
        ["status", "--json"],
        # a mistyped --home once made an empty home and answered from it: "nothing busy"
        ["availability", "--from", "2026-12-07", "--to", "2026-12-08"],
        ["week"],
        ["calendars"],
        ["conflicts", "list"],
        ["outbox", "list"],
        ["outbox", "retry"],
        ["feed", "url"],
        # these said "not connected" (or did nothing) and left a new home with a state
        # database, a store and a secrets folder behind
        ["link", "Work"],
        ["conflicts", "add", "Work"],
        ["conflicts", "remove", "Work"],
        ["privacy", "Work", "busy"],
        ["sync"],
        ["feeds", "remove", "rota"],
        ["feeds", "privacy", "rota", "busy"],
        ["feeds", "poll"],
        ["feed", "disable"],
        ["feed", "rotate"],
        ["connect", "--again"],
    ],
)
def test_commands_that_need_a_home_do_not_create_a_missing_one(cli: Cli, tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "never-made"
    result = cli("--home", str(missing), *command)
    assert result.returncode == 2
    assert f"{missing} does not exist" in one_clean_line(result)
    assert not missing.exists()


def test_disconnect_on_a_missing_home_has_nothing_to_forget_and_makes_no_home(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "never-made"
    result = cli("--home", str(missing), "disconnect")
    assert result.returncode == 0 and result.stdout == "No iCloud account was connected.\n"
    assert not missing.exists()


def test_availability_and_week_say_what_busy_time_does_not_count_yet(cli: Cli, emu: Emulator, home: Path) -> None:
    """On a new home "Busy: none" read as "iCloud says you are free": until a conflict calendar
    is mirrored, both commands say on stderr what is missing and what to run."""
    window = ["availability", "--from", "2026-12-08", "--to", "2026-12-09", "--json"]
    assert cli("feed", "enable").returncode == 0  # a home, with no account
    steps = [
        ("no account is connected", "run `calmirror connect --apple-id EMAIL`"),
        ("no conflict calendar is chosen", "run `calmirror conflicts add NAME`"),
        ("Work is not mirrored yet, so its events do not count", "run `calmirror sync`"),
    ]
    for step, (missing, what_to_run) in enumerate(steps):
        if step == 1:
            assert connect(cli, emu).returncode == 0
        if step == 2:
            assert cli("conflicts", "add", "Work").returncode == 0
        for command in (window, ["week", "2026-12-07", "--json"]):
            result = cli(*command)
            assert result.returncode == 0 and json.loads(result.stdout)  # the answer itself is unchanged
            assert result.stderr.startswith("warning: ") and missing in result.stderr
            assert what_to_run in one_clean_line(result)
    assert cli("sync").returncode == 0
    mirrored = cli(*window)
    assert mirrored.returncode == 0 and mirrored.stderr == ""
    assert json.loads(mirrored.stdout)["intervals"]


def test_connect_lists_the_calendars_in_the_order_calendars_does(cli: Cli, emu: Emulator) -> None:
    """connect printed the server's order (Reminders, Work, Family, Home), `calendars` the names'."""
    shown = cli(
        "connect", "--apple-id", APPLE_ID, "--server", emu.url, "--password-stdin", "--json", input=APP_PASSWORD
    )
    assert shown.returncode == 0, shown.stderr
    listed = [c["name"] for c in json.loads(cli("calendars", "--json").stdout)]
    assert [c["name"] for c in json.loads(shown.stdout)["calendars"]] == listed == sorted(listed)
    again = cli("connect", "--again", "--password-stdin", "--json", input=APP_PASSWORD)
    assert [c["name"] for c in json.loads(again.stdout)["calendars"]] == listed


def test_availability_takes_the_days_week_takes_and_needs_no_window(cli: Cli, emu: Emulator, home: Path) -> None:
    """`availability` alone answered "Missing option '--from'", and `--from today` was "not a
    date" while `week today` works: it now starts now, looks a week ahead, and takes `today`,
    `tomorrow`, `monday` or `+3d` as the start of that day."""
    today = datetime.now(UTC).date()
    for days in (0, 1, 2, 5):  # busy at 23:00 UTC each of those days, whenever the test runs
        at = (today + timedelta(days=days)).strftime("%Y%m%d")
        emu.put_item(
            emu.calendar_id("Work"),
            f"late-{days}.ics",
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:late-{days}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{at}T230000Z\r\n"
            f"DTEND:{at}T233000Z\r\nSUMMARY:Late call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        )
    assert connect(cli, emu).returncode == 0 and cli("link", "Work").returncode == 0
    assert cli("sync").returncode == 0

    def busy(*window: str) -> object:
        result = cli("availability", *window, "--tz", "UTC", "--json", "--no-daemon")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        return json.loads(result.stdout)

    in_words = busy("--from", "today", "--to", "+7d")
    assert in_words == busy("--from", today.isoformat(), "--to", (today + timedelta(days=7)).isoformat())
    assert in_words["intervals"]
    assert busy("--from", "tomorrow", "--to", "+3d") == busy(
        "--from", (today + timedelta(days=1)).isoformat(), "--to", (today + timedelta(days=3)).isoformat()
    )
    alone = busy()  # from now, a week ahead: what is left of today and the next seven days
    assert len(alone["intervals"]) >= 3 and all(
        datetime.fromisoformat(i["end"]) > datetime.now(UTC) - timedelta(minutes=1) for i in alone["intervals"]
    )
    assert alone["intervals"][-1]["start"] < (datetime.now(UTC) + timedelta(days=7)).isoformat()

    refused = cli("availability", "--from", "someday")
    assert refused.returncode == 2
    assert one_clean_line(refused) == (
        "calmirror: --from 'someday': not a date; use now, today, tomorrow, monday, +3d, "
        "2026-12-01, 2026-12-01T09:00 or 2026-12-01T09:00+01:00"
    )


def test_disconnect_removes_the_mirrors_and_status_says_why_the_link_has_no_name(
    cli: Cli, emu: Emulator, home: Path
) -> None:
    """`disconnect` keeps the link for the account's return; status showed a bare calendar id.
    Its mirrors stayed behind, shown to clients but counted nowhere, and a sync after connecting
    again found their files as strays ("the mirror did not match its record")."""
    mirror = home / "store" / "collection-root" / "calmirror" / "icloud-work"
    assert connect(cli, emu).returncode == 0
    assert cli("link", "Work").returncode == 0
    assert cli("sync").returncode == 0 and mirror.is_dir()
    assert "Linked calendar: Work\n" in cli("status").stdout
    gone = cli("disconnect")
    assert gone.returncode == 0 and "stay chosen for when this account connects again" in gone.stdout
    assert not mirror.exists()
    said = cli("status").stdout
    assert "Linked calendar: " in said and "in no connected account: connect it again" in said
    assert connect(cli, emu).returncode == 0
    again = cli("sync")
    assert again.returncode == 0 and "Work: 16 added" in again.stdout, again.stdout
    assert "did not match its record" not in again.stderr + again.stdout
    assert "Linked calendar: Work\n" in cli("status").stdout and mirror.is_dir()


def test_home_that_is_a_file_gives_one_line(cli: Cli, tmp_path: Path) -> None:
    a_file = tmp_path / "calmirror-home"
    a_file.write_text("")
    for args in (["--home", str(a_file), "status"], ["--home", str(a_file), "run"]):
        result = cli(*args)
        assert result.returncode == 2
        assert f"{a_file} is a file; --home needs a folder" in one_clean_line(result)
    by_env = cli("status", env={"CALMIRROR_HOME": str(a_file)})
    assert by_env.returncode == 2 and "CALMIRROR_HOME needs a folder" in one_clean_line(by_env)


def test_sync_now_json_prints_json(cli: Cli, home: Path) -> None:
    (home / "config.toml").write_text("[server]\nport = 0\n")
    env = {**os.environ, "CALMIRROR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "calmirror", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: json.loads(cli("status", "--json").stdout)["daemon_running"], 20)
        result = cli("sync", "--now", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"asked_daemon": True, "pid": proc.pid}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_sync_now_without_a_daemon_says_it_syncs_here(cli: Cli, emu: Emulator, home: Path) -> None:
    connected_home(home, emu, conflicts=("Work",))
    result = cli("sync", "--now")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["No daemon runs for this home (`calmirror run`); syncing here instead."]
    assert result.stdout.startswith("Work: 16 added")


def test_demo_books_a_free_slot_and_says_what_it_does(tmp_path: Path) -> None:
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 5232))  # the demo's usual port is taken (or was already)
        holder.listen(1)
    except OSError:
        pass
    try:
        result = subprocess.run(
            [sys.executable, "-m", "calmirror", "demo", "--seconds", "2"],
            env={**os.environ, "CALMIRROR_HOME": str(tmp_path / "unused")},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "reached the linked iCloud calendar" in said and "a free slot" in said
    assert ".calmirror/ (same login)" in said  # the page is named, not left to the README
    assert "double booking" not in said.lower() and "overlaps busy time" not in said
    assert "Press Ctrl-C" not in said and "The demo stops in 2 s." in said
    assert "port 5232 is in use, so the demo took a free port" in said


def test_emulator_serve_seeds_generated_events_and_says_how_far_it_got(tmp_path: Path) -> None:
    proc = emulator_serve("--events", "2120")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        said = [proc.stderr.readline().strip() for _ in range(3)]
        assert said == ["Putting 2,120 generated events into Work...", "2,000 of 2,120", "2,120 of 2,120"]
        lines = [proc.stdout.readline() for _ in range(4)]
        work_url = next(line.split(": ", 1)[1].strip() for line in lines if line.strip().startswith("Work"))
        listing = requests.request(
            "PROPFIND",
            work_url,
            auth=(APPLE_ID, APP_PASSWORD),
            headers={"Depth": "1"},
            data='<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            timeout=30,
        )
        assert listing.status_code == 207
        assert listing.text.count("GENERATED-") == 2120
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
