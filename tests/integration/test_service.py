"""The daemon as a service: sd_notify order, SIGTERM during a push, SIGHUP reload, journald
logging, systemd units, doctor, and the demo run headless."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from calmirror import credentials
from calmirror.emulator import Emulator
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, connected_home, event, status_json, wait_for

ROOT = Path(__file__).parents[2]


def spawn(home: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "CALMIRROR_HOME": str(home), **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "calmirror", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_notify_ready_watchdog_stopping_in_order(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "h", emu, conflicts=("Work",))
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    proc = spawn(home.data_dir, {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"})
    messages: list[str] = []
    try:
        while not any(m.startswith("WATCHDOG=1") for m in messages):
            messages.append(sock.recv(4096).decode())
        # READY only after the first mirror pass was attempted: the mirror exists already
        assert status_json(home.data_dir)["mirrors"][0]["items"] == 16
        proc.send_signal(signal.SIGTERM)
        while not any(m.startswith("STOPPING=1") for m in messages):
            messages.append(sock.recv(4096).decode())
    finally:
        code = proc.wait(15)
        sock.close()
    kinds = [m.split("=")[0] for m in messages]
    assert kinds.index("READY") < kinds.index("WATCHDOG") < kinds.index("STOPPING")
    assert code == 0


def test_sigterm_during_a_push_finishes_the_write_and_exits_in_time(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "h", emu, conflicts=("Work",))
    proc = spawn(home.data_dir)
    try:
        assert wait_for(lambda: bool(status_json(home.data_dir).get("daemon_running")), 20)
        url = str(status_json(home.data_dir)["local_url"])
        acct = credentials.local_account(home)
        emu.faults.delay(2.0, count=1, method="PUT")
        answer = requests.put(
            f"{url}{acct.username}/appointments/slow.ics",
            data=event("slow-1").encode(),
            auth=(acct.username, acct.password),
            headers={"Content-Type": "text/calendar"},
            timeout=10,
        )
        assert answer.status_code == 201
        time.sleep(0.6)  # the push is now waiting on the slow iCloud answer
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0 and took < 10
    assert any("UID:slow-1" in b for b in emu.items(emu.calendar_id("Work")).values())
    final = status_json(home.data_dir)
    assert final["outbox"]["depth"] == 0  # type: ignore[index]


def test_a_storm_of_signals_never_hangs_the_daemon(tmp_path: Path, emu: Emulator) -> None:
    """Signal handlers used to set threading.Events; a signal arriving while the main thread was
    inside Event.set/wait deadlocked on the event's own lock, and `calmirror run` hung for good
    after two quick SIGTERMs. Now every burst ends in a clean exit."""
    home = connected_home(tmp_path / "h", emu, conflicts=("Work",))
    for burst in range(3):
        proc = spawn(home.data_dir)
        try:
            assert wait_for(lambda: bool(status_json(home.data_dir).get("daemon_running")), 20)
            for n in range(200):  # sync-now, reload and stop requests arriving together
                proc.send_signal((signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR1)[n % 3])
            for _ in range(20):
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert code == 0, f"burst {burst}: exit {code}"


def test_sighup_reloads_conflict_calendars_and_privacy(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "h", emu, conflicts=("Work",))
    proc = spawn(home.data_dir)
    cli = Cli(home.data_dir)
    try:
        assert wait_for(lambda: bool(status_json(home.data_dir).get("daemon_running")), 20)
        url = str(status_json(home.data_dir)["local_url"])
        # `conflicts add` edits the config and sends SIGHUP to the running daemon
        assert cli("conflicts", "add", "Home").returncode == 0
        assert wait_for(lambda: {m["name"] for m in status_json(home.data_dir)["mirrors"]} == {"Work", "Home"}, 15)
        assert cli("privacy", "Home", "busy").returncode == 0
        acct = credentials.local_account(home)

        def home_is_busy_only() -> bool:
            listing = requests.request(
                "REPORT",
                f"{url}{acct.username}/icloud-home/",
                auth=(acct.username, acct.password),
                headers={"Depth": "1", "Content-Type": "application/xml"},
                data='<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/>'
                '</D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter>'
                "</C:calendar-query>",
                timeout=10,
            ).text
            return "SUMMARY:Busy" in listing and "Dentist" not in listing and "Zahnarzt" not in listing

        assert wait_for(home_is_busy_only, 15)
        # the local server kept serving throughout
        assert (
            requests.request(
                "PROPFIND",
                f"{url}{acct.username}/",
                auth=(acct.username, acct.password),
                headers={"Depth": "0"},
                timeout=10,
            ).status_code
            == 207
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_journald_lines_carry_priorities_and_no_timestamps(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text("[server]\nport = 0\n")
    proc = spawn(home, {"JOURNAL_STREAM": "8:12345"})
    try:
        assert wait_for(lambda: bool(status_json(home).get("daemon_running")), 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    lines = [line for line in err.splitlines() if line]
    assert lines and all(re.match(r"^<[0-7]>", line) for line in lines)
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines)
    assert any(line.startswith("<6>") and "serving" in line for line in lines)


def test_doctor_reports_each_check(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "h", emu, conflicts=("Work",))
    cli = Cli(home.data_dir)
    result = cli("doctor", "--json")
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert {"config", "disk", "local store", "watcher", "systemd", "credentials", "iCloud", "daemon"} <= set(checks)
    assert checks["iCloud"]["ok"] and checks["credentials"]["ok"]
    emu.set_password("zzzz-zzzz-zzzz-zzzz")
    result = cli("doctor")
    assert result.returncode == 1
    assert "problem  iCloud: the password was refused" in result.stdout
    assert APP_PASSWORD not in result.stdout + result.stderr


def test_demo_runs_headless(tmp_path: Path) -> None:
    result = Cli(tmp_path / "unused")("demo", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "mirrored iCloud calendar" in out and "reached the linked iCloud calendar" in out
    assert re.search(r"URL:\s+http://127\.0\.0\.1:\d+/", out) and "Password:" in out
    assert "Traceback" not in result.stderr


def test_sync_now_wakes_the_running_daemon(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "h", emu, conflicts=("Work",))
    home.config_file.write_text(home.config_file.read_text() + "\n[sync]\ninterval = 3600\n")
    proc = spawn(home.data_dir)
    try:
        assert wait_for(lambda: bool(status_json(home.data_dir).get("daemon_running")), 20)
        emu.put_item(emu.calendar_id("Work"), "fresh.ics", event("fresh-1", "Just added in iCloud"))
        result = Cli(home.data_dir)("sync", "--now")
        assert "Asked the running daemon" in result.stdout
        assert wait_for(lambda: status_json(home.data_dir)["mirrors"][0]["items"] == 17, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
