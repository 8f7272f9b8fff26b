"""A second account beside the first: set up from the CLI, calendars addressed as
`ACCOUNT/NAME`, mirrored as `icloud-<account>-<slug>/`, pushed to when linked, and held only
by its own health (two emulators, one refusing the password)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from calmirror import config
from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.model import scoped_id
from calmirror.state import State
from tests.conftest import Cli
from tests.helpers import (
    APP_PASSWORD,
    APPLE_ID,
    connected_home,
    daemon_running,
    engine_for,
    event,
    status_json,
    wait_for,
)
from tests.web.test_page_http import logged_in, page

WORK_ID = "work@example.com"


@pytest.fixture
def work_emu() -> Iterator[Emulator]:
    """A second server with its own Apple ID and the sample calendars."""
    with Emulator(apple_id=WORK_ID, password=APP_PASSWORD, seed="sample") as emulator:
        yield emulator


def _ok(result: object) -> None:
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")


def _connect_work(cli: Cli, work_emu: Emulator) -> dict[str, object]:
    result = cli(
        "connect", "--apple-id", WORK_ID, "--server", work_emu.url, "--name", "work", "--password-stdin", "--json",
        input=APP_PASSWORD + "\n",
    )  # fmt: skip
    _ok(result)
    return dict(json.loads(result.stdout))


def test_a_second_account_is_set_up_listed_addressed_and_removed(
    home: Path, cli: Cli, emu: Emulator, work_emu: Emulator
) -> None:
    connected_home(home, emu, conflicts=("Work",))
    connected = _connect_work(cli, work_emu)
    assert connected["account"] == "work"
    work_cal = scoped_id("work", work_emu.calendar_id("Work"))

    listed = json.loads(cli("accounts", "list", "--json").stdout)
    assert [(a["name"], a["apple_id"]) for a in listed] == [("default", APPLE_ID), ("work", WORK_ID)]
    assert all(a["health"]["state"] == "ok" for a in listed)

    calendars = json.loads(cli("calendars", "--json").stdout)
    assert {(c["account"], c["name"]) for c in calendars} >= {("default", "Work"), ("work", "Work"), ("work", "Home")}
    assert work_cal in {c["id"] for c in calendars}
    table = cli("calendars", "--cached").stdout  # each spelled as `link` takes it, as the page shows it
    assert "default/Work" in table and "work/Work" in table and "work/Home" in table

    # The same name in two accounts: a bare name is ambiguous, ACCOUNT/NAME is not.
    ambiguous = cli("link", "Work")
    assert ambiguous.returncode == 2 and "ACCOUNT/CALENDAR" in ambiguous.stderr and "work/Work" in ambiguous.stderr
    _ok(cli("link", "work/Work"))
    _ok(cli("conflicts", "add", "work/Home"))
    settings = config.load(home / "config.toml")
    assert settings.icloud.linked == work_cal
    assert set(settings.icloud.conflicts) == {
        emu.calendar_id("Work"),
        work_cal,
        scoped_id("work", work_emu.calendar_id("Home")),
    }
    assert "work/Nope" in cli("conflicts", "add", "work/Nope").stderr  # the error names what was asked

    # One connection per account: the same Apple ID again is refused in one line.
    again = cli(
        "connect", "--apple-id", WORK_ID, "--server", work_emu.url, "--name", "other", "--password-stdin",
        input=APP_PASSWORD + "\n",
    )  # fmt: skip
    assert again.returncode == 2 and "already connected (account work)" in again.stderr
    assert again.stderr.count("\n") == 1 and APP_PASSWORD not in again.stderr + again.stdout

    # Each account's password under its own key; none printed.
    secrets = sorted(p.name for p in (home / "secrets").iterdir())
    assert "icloud-password" in secrets and "icloud-password-work" in secrets
    status = cli("status", "--json")
    assert APP_PASSWORD not in status.stdout
    assert [a["name"] for a in json.loads(status.stdout)["accounts"]] == ["default", "work"]

    again_work = cli("connect", "--again", "--name", "work", "--password-stdin", input=APP_PASSWORD + "\n")
    assert again_work.returncode == 0 and "Checked work@example.com again" in again_work.stdout, again_work.stderr
    assert config.load(home / "config.toml").icloud.linked == work_cal  # links kept

    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert checks["credentials"]["ok"] and "1 further account" in checks["credentials"]["detail"]

    refused = cli("disconnect")
    assert refused.returncode == 2 and "accounts remove work" in refused.stderr
    removed = cli("accounts", "remove", "work")
    _ok(removed)
    settings = config.load(home / "config.toml")
    assert settings.icloud.linked is None and settings.icloud.conflicts == (emu.calendar_id("Work"),)
    assert not (home / "secrets" / "icloud-password-work").exists()
    assert [a["name"] for a in json.loads(cli("accounts", "list", "--json").stdout)] == ["default"]


def _two_account_home(root: Path, emu: Emulator, work_emu: Emulator) -> Home:
    """First account: Home mirrored. Work account: its Work linked, its Home mirrored."""
    from calmirror import config_edit
    from calmirror.account import connect

    home = connected_home(root, emu, linked=None, conflicts=("Home",))
    state = State(home.state_db)
    try:
        connect(home, config.load(home.config_file), state, WORK_ID, APP_PASSWORD, work_emu.url, "work")
    finally:
        state.close()
    work = scoped_id("work", work_emu.calendar_id("Work"))
    config_edit.set_linked(home.config_file, work, also_conflict=False)
    settings = config.load(home.config_file)
    ids = [*settings.icloud.conflicts, scoped_id("work", work_emu.calendar_id("Home"))]
    config_edit.set_conflicts(home.config_file, ids)
    return home


def test_one_account_refusing_its_password_never_stops_the_others_traffic(
    tmp_path: Path, emu: Emulator, work_emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    home = _two_account_home(tmp_path / "home", emu, work_emu)
    work_home = work_emu.calendar_id("Home")
    with daemon_running(home) as run, closing(run.state()) as state:
        assert wait_for(lambda: bool(state.mirror_items(scoped_id("work", work_home))), 30)
        mirrors = {m.calendar_id: m.slug for m in state.mirrors()}
        assert mirrors[emu.calendar_id("Home")] == "home"  # the first account's names are today's
        assert mirrors[scoped_id("work", work_home)] == "work-home"  # icloud-work-home/

        emu.set_password("revoked-revoked-revoked")  # the first account now answers 401
        emu.clear_requests()
        run.daemon.mirror_wake.set()
        assert wait_for(lambda: (state.get_meta("health") or {}).get("state") == "auth_failed", 30)
        refused_at = len(emu.requests)

        # Pushes to the linked calendar in the other account go on.
        assert run.put("a.ics", event("after-401", "Booked while the first account is refused")).status_code == 201
        work_cal = work_emu.calendar_id("Work")
        assert wait_for(lambda: any("after-401" in b for b in work_emu.items(work_cal).values()), 30)
        # And so do its mirrors.
        work_emu.put_item(work_home, "new.ics", event("work-new", "Added at work", start="20261203T090000Z"))
        run.daemon.mirror_wake.set()
        key = scoped_id("work", work_home)
        assert wait_for(lambda: any(e.uid == "work-new" for e in state.mirror_items(key).values()), 30)
        assert (state.get_meta("health:work") or {}).get("state") == "ok"
        # The refusing account was not asked again meanwhile (a 401 stops until a reconnect).
        assert len(emu.requests) == refused_at

        # status --json and the page's Connection view show each account with its own health.
        accounts = {a["name"]: a["connection"]["state"] for a in status_json(run.home)["accounts"]}
        assert accounts == {"default": "auth_failed", "work": "ok"}
        html = logged_in(run).get(page(run, "connection"), timeout=10).text
        first = html[html.index('id="account-default"') :].split("</section>")[0]
        work = html[html.index('id="account-work"') :].split("</section>")[0]
        assert "Password refused" in first and APPLE_ID in first
        assert "Connected: The server answers" in work and WORK_ID in work
    assert "refused" in caplog.text and APP_PASSWORD not in caplog.text  # no secret in any log line


def test_a_retry_after_of_one_account_holds_only_that_one(tmp_path: Path, emu: Emulator, work_emu: Emulator) -> None:
    home = _two_account_home(tmp_path / "home", emu, work_emu)
    work_home = work_emu.calendar_id("Home")
    with daemon_running(home) as run, closing(run.state()) as state:
        key = scoped_id("work", work_home)
        assert wait_for(lambda: bool(state.mirror_items(key)), 30)
        emu.faults.fail(count=50, status=503, retry_after=600)
        run.daemon.mirror_wake.set()
        assert wait_for(lambda: (state.get_meta("health") or {}).get("state") == "unreachable", 30)
        held_at = len(emu.requests)
        work_emu.put_item(work_home, "n.ics", event("during-503", "At work", start="20261203T130000Z"))
        time.sleep(0.2)
        run.daemon.mirror_wake.set()
        assert wait_for(lambda: any(e.uid == "during-503" for e in state.mirror_items(key).values()), 30)
        assert run.put("b.ics", event("push-during-503", "Booked")).status_code == 201
        work_cal = work_emu.calendar_id("Work")
        assert wait_for(lambda: any("push-during-503" in b for b in work_emu.items(work_cal).values()), 30)
        assert len(emu.requests) == held_at  # nothing was sent to the held account


def test_a_further_account_follows_its_own_server_moving_its_home(
    tmp_path: Path, emu: Emulator, work_emu: Emulator
) -> None:
    home = _two_account_home(tmp_path / "home", emu, work_emu)
    engine = engine_for(home)
    try:
        with engine.client() as client:
            assert all(r.error is None for r in engine.mirror_pass(client))
            first_home = (engine.state.account() or pytest.fail("no first account")).home_url
            new_url = work_emu.move_partition()
            work_home = work_emu.calendar_id("Home")
            work_emu.put_item(work_home, "moved.ics", event("after-move", "After the move", start="20261204T090000Z"))
            assert all(r.error is None for r in engine.mirror_pass(client))
        moved = engine.state.account("work") or pytest.fail("no work account")
        assert moved.home_url.startswith(new_url)
        assert (engine.state.account() or pytest.fail("no first account")).home_url == first_home  # untouched
        key = scoped_id("work", work_home)
        assert any(e.uid == "after-move" for e in engine.state.mirror_items(key).values())
        assert all(href.startswith(new_url) for href in engine.state.mirror_items(key))
        assert {c.id for c in engine.state.calendars() if c.url.startswith(new_url)} == {
            c.id for c in engine.state.calendars() if c.id.startswith("work/")
        }
    finally:
        engine.connections.close()
        engine.state.close()


def test_doctor_checks_every_account_by_name(tmp_path: Path, emu: Emulator, work_emu: Emulator) -> None:
    home = _two_account_home(tmp_path / "home", emu, work_emu)
    cli = Cli(home.data_dir)
    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert checks["iCloud"]["ok"] and checks["iCloud"]["account"] == "default"
    assert checks["account work"]["ok"] and checks["account work"]["account"] == "work"
    assert checks["account work"]["detail"].startswith(f"{WORK_ID} on 127.0.0.1:")

    # One account refusing its password is that account's problem, named, with its own fix.
    work_emu.set_password("revoked-revoked-revoked")
    said = cli("doctor")
    assert said.returncode == 1
    lines = said.stdout.splitlines()
    assert any(line.startswith("ok       iCloud: ") for line in lines), said.stdout
    work = next(line for line in lines if "account work" in line)
    assert work.startswith("problem  account work: work@example.com on ")
    assert "password was refused" in work and "connect --again --name work" in work
    assert APP_PASSWORD not in said.stdout + said.stderr

    # An account whose server does not answer at all: the network is named, for that account only.
    work_emu.stop()
    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert checks["iCloud"]["ok"]
    assert not checks["account work"]["ok"] and "check the network" in checks["account work"]["detail"]
