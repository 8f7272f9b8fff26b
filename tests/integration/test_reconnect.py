"""The connection heals itself: when iCloud moves the account's calendar home to another
partition host, calmirror asks the front door again, moves there and carries on."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from calmirror import config, doctor
from calmirror.emulator import Emulator
from calmirror.emulator.server import PartitionFate
from calmirror.errors import NotFound, RemoteError, Unreachable
from calmirror.reconnect import Healer, home_lost, outdated
from calmirror.remote import ICloudClient
from calmirror.state import State
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, connected_home, engine_for, event, wait_for


def _port(url: str) -> int | None:
    return urlsplit(url).port


def _uid_count(emu: Emulator, cal_id: str, uid: str) -> int:
    return sum(f"UID:{uid}\r\n" in text for text in emu.items(cal_id).values())


def test_a_running_daemon_follows_the_move_and_delivers_a_waiting_appointment_once(
    running: Running, emu: Emulator
) -> None:
    work = emu.calendar_id("Work")
    with closing(running.state()) as state:
        assert wait_for(lambda: bool(state.mirror_items(work)), 30)
    old_port = _port(emu.partition_url)
    new_url = emu.move_partition()  # the old port now refuses connections
    assert _port(new_url) != old_port
    emu.clear_requests()

    assert running.put("moved.ics", event("moved-1", "Booked after the move")).status_code == 201
    assert wait_for(lambda: _uid_count(emu, work, "moved-1") == 1, 30)
    puts = [r for r in emu.requests if r.method == "PUT" and r.status in (201, 204)]
    assert len(puts) == 1 and puts[0].host == "partition"

    with closing(running.state()) as state:
        assert wait_for(lambda: (state.account() or pytest.fail("no account")).home_url.startswith(new_url), 10)
        assert all(cal.url.startswith(new_url) for cal in state.calendars())
        assert all(href.startswith(new_url) for href in state.mirror_items(work))
        appt = state.appointment("moved-1")
        assert appt is not None and (appt.remote_href or "").startswith(new_url)
        events = [e.message for e in state.events(50, levels=("warning",))]
        assert any(f"localhost:{old_port}" in m and f"localhost:{_port(new_url)}" in m for m in events)

    emu.put_item(work, "after-move.ics", event("after-move-1", "Added in iCloud"))
    running.daemon.mirror_wake.set()
    with closing(running.state()) as state:
        assert wait_for(lambda: any(e.uid == "after-move-1" for e in state.mirror_items(work).values()), 30)
    assert _uid_count(emu, work, "moved-1") == 1


@pytest.mark.parametrize("fate", ["closed", "redirect", "gone"])
def test_a_mirror_pass_follows_every_way_the_old_host_can_fail(
    tmp_path: Path, emu: Emulator, fate: PartitionFate
) -> None:
    home = connected_home(tmp_path / "home", emu, conflicts=("Work", "Home"))
    engine = engine_for(home)
    with engine.client() as client:
        assert all(r.error is None for r in engine.mirror_pass(client))
    generation = engine.state.mirror_generation(emu.calendar_id("Work"))
    new_url = emu.move_partition(old=fate)
    emu.put_item(emu.calendar_id("Home"), "new.ics", event("new-after-move", "Added in iCloud"))
    with engine.client() as client:
        reports = engine.mirror_pass(client)
    assert [r.error for r in reports] == [None, None]
    account = engine.state.account()
    assert account is not None and account.home_url.startswith(new_url)
    assert engine.state.mirror_generation(emu.calendar_id("Work")) > generation  # caches read the texts again
    home_id = emu.calendar_id("Home")
    home_items = engine.state.mirror_items(home_id)
    assert set(engine.state.mirror_texts(home_id)) == set(home_items)  # the exact texts moved too
    assert any(e.uid == "new-after-move" for e in home_items.values())
    assert all(href.startswith(new_url) for href in home_items)
    # The old host saw only the request that failed (and, when it said 404, the listing of the
    # home that confirmed it): a redirect is never followed with the password.
    old_host = [(r.method, r.status) for r in emu.requests if r.host == "old-partition"]
    expected = {"redirect": [("REPORT", 301)], "gone": [("REPORT", 404), ("PROPFIND", 404)], "closed": []}
    assert old_host == expected[fate]


def test_rediscovery_is_asked_at_most_once_per_period(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "home", emu)
    state = State(home.state_db)
    account = state.account()
    assert account is not None
    healer = Healer(state, period=60)
    lost = Unreachable("PROPFIND: connection refused", url=account.home_url)
    with ICloudClient(emu.url, APPLE_ID, APP_PASSWORD) as client:
        emu.clear_requests()
        assert not healer.heal(client, lost, now=1000.0)  # the front door names the same home
        assert not healer.heal(client, lost, now=1030.0)
        assert len([r for r in emu.requests if r.host == "front" and r.path == "/"]) == 1
        emu.move_partition()
        assert not healer.heal(client, lost, now=1059.0)  # still inside the period
        assert healer.heal(client, lost, now=1061.0)
    state.close()


def test_which_failures_mean_the_home_is_lost() -> None:
    home = "https://p72-caldav.icloud.com:443/123/calendars/"
    front = "https://caldav.icloud.com/"
    assert home_lost(Unreachable("x", url=home + "work/"), home)
    assert home_lost(RemoteError("x", url=home + "work/", status=301), home)
    assert home_lost(NotFound("x", url=home, status=404), home)
    assert not home_lost(NotFound("x", url=home + "work/x.ics", status=404), home)  # an item, not the home
    assert not home_lost(Unreachable("x", url=front), home)  # the front door's own trouble
    assert outdated(Unreachable("x", url="https://p01-caldav.icloud.com:443/123/calendars/w/"), home, front)
    assert not outdated(Unreachable("x", url=home), home, front)


def test_errors_name_the_host_that_failed(emu: Emulator) -> None:
    with ICloudClient(emu.url, APPLE_ID, APP_PASSWORD) as client:
        account = client.discover()
        old = urlsplit(account.home_url).netloc
        emu.move_partition()
        with pytest.raises(Unreachable) as caught:
            client.list_calendars(account.home_url)
    assert old in caught.value.message


def test_doctor_does_not_blame_the_network_when_the_front_door_answers(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "home", emu)
    new_url = emu.move_partition()
    state = State(home.state_db)
    check = doctor.check_icloud(home, config.load(home.config_file), state)
    state.close()
    assert not check.ok
    assert "network" not in check.detail
    assert f"localhost:{_port(new_url)}" in check.detail and "connect --again" in check.detail


def test_connect_again_moves_keeps_choices_and_takes_a_new_password(home: Path, cli: Cli, emu: Emulator) -> None:
    connected_home(home, emu, conflicts=("Work", "Home"))
    config_before = (home / "config.toml").read_text()
    refused = cli("connect", "--apple-id", APPLE_ID, "--password-stdin", input=APP_PASSWORD + "\n")
    assert refused.returncode != 0 and "connect --again" in refused.stderr + refused.stdout

    new_url = emu.move_partition()
    done = cli("connect", "--again", "--json", input="")
    assert done.returncode == 0, done.stderr
    assert '"moved": true' in done.stdout
    with closing(State(home / "state.db")) as state:
        account = state.account()
        assert account is not None and account.home_url.startswith(new_url)
    assert (home / "config.toml").read_text() == config_before

    emu.set_password("wxyz-wxyz-wxyz-wxyz")
    stale = cli("connect", "--again", input="")
    assert stale.returncode == 3
    fixed = cli("connect", "--again", "--password-stdin", input="wxyz-wxyz-wxyz-wxyz\n")
    assert fixed.returncode == 0, fixed.stderr
    assert "new password stored" in fixed.stdout
    assert cli("calendars", input="").returncode == 0


def test_connect_again_takes_the_servers_new_url_and_keeps_every_mirrored_item(home: Path, cli: Cli) -> None:
    """A CalDAV server that moved to a new URL (a new host, a restarted emulator on another
    port): `--server` with `--again` was ignored, and doctor sent the user to `icloud.server`,
    which only `connect` reads. The only way on was `disconnect`, dropping every mirror."""
    data = home.parent / "server-data"
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, data_dir=str(data)) as before:
        assert (
            cli(
                "connect", "--apple-id", APPLE_ID, "--password-stdin", "--server", before.url, input=APP_PASSWORD + "\n"
            ).returncode
            == 0
        )
        assert cli("link", "Work").returncode == 0
        assert cli("sync").returncode == 0
    gone = cli("doctor")
    assert gone.returncode == 1 and "connect --again --server URL" in gone.stdout
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, data_dir=str(data)) as after:
        assert _port(after.url) != _port(before.url)
        moved = cli("connect", "--again", "--server", after.url, input="")
        assert moved.returncode == 0, moved.stderr
        synced = cli("sync", "--json")
        assert synced.returncode == 0, synced.stderr
        (work,) = json.loads(synced.stdout)["calendars"]
        assert (work["added"], work["deleted"], work["error"]) == (0, 0, None)
        with closing(State(home / "state.db")) as state:
            account = state.account()
            assert account is not None and account.server == after.url
    bad = cli("connect", "--again", "--server", "webcal://example.org/", input="")
    assert bad.returncode == 2 and "not an http(s) CalDAV URL" in bad.stderr


def test_connect_without_server_takes_the_configs(home: Path, cli: Cli, emu: Emulator) -> None:
    """The config's `icloud.server` ("CalDAV server of the account") was read by the page's form
    only: `calmirror connect` went to iCloud whatever it said."""
    (home / "config.toml").write_text(f'[icloud]\nserver = "{emu.url}"\n', encoding="utf-8")
    done = cli("connect", "--apple-id", APPLE_ID, "--password-stdin", input=APP_PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
