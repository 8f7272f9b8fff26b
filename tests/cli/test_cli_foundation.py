"""The CLI as a user runs it: connect, calendars, link, conflicts, local-account, run, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from calmirror.emulator import Emulator
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID, wait_for


def one_clean_line(result: subprocess.CompletedProcess[str]) -> str:
    """A failure prints exactly one line on stderr, no traceback and no secret."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert APP_PASSWORD not in result.stderr + result.stdout
    return lines[0]


def connect(cli: Cli, emu: Emulator, password: str = APP_PASSWORD) -> subprocess.CompletedProcess[str]:
    return cli("connect", "--apple-id", APPLE_ID, "--password-stdin", "--server", emu.url, input=password + "\n")


def test_connect_lists_calendars_with_what_each_can_do(cli: Cli, emu: Emulator, home: Path) -> None:
    result = cli(
        "connect", "--apple-id", APPLE_ID, "--password-stdin", "--server", emu.url, "--json", input=APP_PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    usable = {c["name"]: c["usable_as"] for c in data["calendars"]}
    assert usable == {
        "Home": "linkable",
        "Work": "linkable",
        "Family": "conflict only",
        "Reminders": "unusable (reminders)",
    }
    secret = home / "secrets" / "icloud-password"
    assert secret.read_text().strip() == APP_PASSWORD
    assert secret.stat().st_mode & 0o777 == 0o600 and (home / "secrets").stat().st_mode & 0o777 == 0o700
    config_text = (home / "config.toml").read_text() if (home / "config.toml").exists() else ""
    assert APP_PASSWORD not in config_text
    listing = json.loads(cli("calendars", "--json").stdout)
    assert {c["name"] for c in listing} == {"Home", "Work", "Family", "Reminders"}
    assert all(set(c) >= {"name", "id", "url", "components", "writable", "role"} for c in listing)
    assert not any(c["url"].rstrip("/").endswith(("inbox", "outbox", "notification", "calendars")) for c in listing)


def test_wrong_password_explains_app_specific_passwords(cli: Cli, emu: Emulator) -> None:
    result = connect(cli, emu, "wxyz-wxyz-wxyz-wxyz")
    assert result.returncode == 3
    line = one_clean_line(result)
    assert "app-specific password" in line and "wxyz-wxyz-wxyz-wxyz" not in result.stdout + result.stderr


def test_password_not_shaped_like_an_app_password_gets_a_warning(cli: Cli, emu: Emulator) -> None:
    result = connect(cli, emu, "hunter2")
    assert "does not look like an app-specific password" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    # the warning and the refusal after it give the same way to the page, in the same words
    warning, refusal = (line for line in result.stderr.splitlines() if line.strip())
    path = "https://account.apple.com → Sign-In and Security → App-Specific Passwords"
    assert path in warning and path in refusal


def test_connecting_twice_is_refused(cli: Cli, emu: Emulator) -> None:
    assert connect(cli, emu).returncode == 0
    again = connect(cli, emu)
    assert again.returncode == 2 and "already connected" in one_clean_line(again)


def test_unreachable_server_gives_one_line(cli: Cli) -> None:
    result = cli(
        "connect",
        "--apple-id",
        APPLE_ID,
        "--password-stdin",
        "--server",
        "http://127.0.0.1:9/",
        input=APP_PASSWORD + "\n",
    )
    assert result.returncode == 4
    assert "check the network" in one_clean_line(result)


def test_503_at_discovery_gives_one_line(cli: Cli, emu: Emulator) -> None:
    emu.faults.fail(count=1, status=503, retry_after=120)
    result = connect(cli, emu)
    assert result.returncode == 4 and "try again later" in one_clean_line(result)


def test_account_with_no_event_calendar_is_refused(cli: Cli, emu: Emulator) -> None:
    for name in ("Home", "Work", "Family"):
        emu.delete_calendar(emu.calendar_id(name))
    result = connect(cli, emu)
    assert result.returncode == 2 and "no event (VEVENT) calendar" in one_clean_line(result)


def test_link_and_conflicts_refuse_what_cannot_work(cli: Cli, emu: Emulator) -> None:
    connect(cli, emu)
    cases = {
        ("link", "Family"): "read-only",
        ("link", "Reminders"): "reminders",
        ("link", "Nope"): "no such calendar",
        ("link", "webcal://p01-calendars.icloud.com/published/2/abc"): "subscription",
        ("conflicts", "add", "https://example.com/holidays.ics"): "subscription",
        ("conflicts", "add", "Reminders"): "reminders",
    }
    for args, fragment in cases.items():
        result = cli(*args)
        assert result.returncode == 2, args
        assert fragment in one_clean_line(result), args
    assert cli("link", "Work").returncode == 0
    assert cli("conflicts", "add", "Family", "Home").returncode == 0
    listed = json.loads(cli("conflicts", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["Work", "Family", "Home"]
    assert cli("conflicts", "remove", "Family").returncode == 0
    assert [c["name"] for c in json.loads(cli("conflicts", "list", "--json").stdout)] == ["Work", "Home"]


def test_broken_config_gives_file_key_and_exit_2(cli: Cli, home: Path) -> None:
    (home / "config.toml").write_text("[server]\nport = 'eighty'\n")
    result = cli("status")
    assert result.returncode == 2
    line = one_clean_line(result)
    assert str(home / "config.toml") in line and "server.port" in line


def test_unusable_home_gives_one_line(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = cli("--home", str(blocker / "inner"), "feed", "enable")  # a command that makes a home
    assert result.returncode == 5 and "cannot create folder" in one_clean_line(result)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = cli("--home", str(locked / "inner"), "feed", "enable")
        assert result.returncode == 5 and "permission denied" in one_clean_line(result)


def test_run_serves_the_local_calendar_and_stops_cleanly(cli: Cli, home: Path) -> None:
    (home / "config.toml").write_text("[server]\nport = 0\n")
    env = {**os.environ, "CALMIRROR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "calmirror", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_for(lambda: json.loads(cli("status", "--json").stdout)["local_url"] is not None, 20):
            proc.kill()
            pytest.fail(f"the daemon never published its URL; it said: {proc.communicate()[1][-2000:]}")
        account = json.loads(cli("local-account", "--json").stdout)
        assert set(account) >= {"url", "username", "password"}
        base = account["url"]
        assert base.startswith("http://127.0.0.1:") and not base.endswith(":0/")
        auth = (account["username"], account["password"])
        listing = requests.request("PROPFIND", f"{base}{auth[0]}/", auth=auth, headers={"Depth": "1"}, timeout=10)
        assert listing.status_code == 207
        assert "Appointments" in listing.text and "Blocked slots" in listing.text
        assert requests.request("PROPFIND", f"{base}{auth[0]}/", auth=(auth[0], "wrong"), timeout=10).status_code == 401
        status = json.loads(cli("status", "--json").stdout)
        assert status["daemon_running"] and status["local_url"] == base
    finally:
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = proc.wait(15)
    assert code == 0 and time.monotonic() - started < 10
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_non_loopback_bind_is_refused_unless_allowed(cli: Cli, home: Path) -> None:
    (home / "config.toml").write_text("[server]\nhost = '0.0.0.0'\nport = 0\n")
    result = cli("run", timeout=30)
    assert result.returncode == 2 and "allow_non_loopback" in one_clean_line(result)


def test_disconnect_forgets_the_secret_and_keeps_appointments(cli: Cli, emu: Emulator, home: Path) -> None:
    from calmirror import credentials
    from calmirror.home import resolve
    from calmirror.local.server import LocalServer
    from calmirror.local.store import LocalStore
    from tests.helpers import event

    connect(cli, emu)
    acct = credentials.local_account(resolve(home))
    server = LocalServer(home / "store", port=0, username=acct.username, password=acct.password)
    url = server.start()
    requests.put(
        f"{url}{acct.username}/appointments/keep.ics",
        data=event("keep-1").encode(),
        auth=(acct.username, acct.password),
        headers={"Content-Type": "text/calendar"},
        timeout=10,
    )
    server.stop()
    result = cli("disconnect")
    assert result.returncode == 0 and "Disconnected" in result.stdout
    assert not (home / "secrets" / "icloud-password").exists()
    assert json.loads(cli("status", "--json").stdout)["account"] is None
    assert list(LocalStore(home / "store", acct.username).items("appointments")) == ["keep.ics"]
    assert cli("sync").returncode == 2


def test_help_lists_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in (
        "connect",
        "calendars",
        "link",
        "conflicts",
        "sync",
        "run",
        "status",
        "availability",
        "local-account",
        "disconnect",
        "demo",
        "emulator",
        "outbox",
    ):
        assert command in result.stdout


def test_emulator_serve_runs_in_the_foreground(tmp_path: Path) -> None:
    env = {**os.environ, "PW": APP_PASSWORD}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "calmirror",
            "emulator",
            "serve",
            "--apple-id",
            APPLE_ID,
            "--password-env",
            "PW",
            "--port",
            "0",
            "--data",
            str(tmp_path / "emu"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split("serving on ", 1)[1].strip()
        answer = requests.request(
            "PROPFIND",
            url,
            auth=(APPLE_ID, APP_PASSWORD),
            headers={"Depth": "0"},
            data='<?xml version="1.0"?><propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>',
            timeout=10,
        )
        assert answer.status_code == 207 and "/principal/" in answer.text
        assert requests.request("PROPFIND", url, auth=(APPLE_ID, "nope"), timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0
