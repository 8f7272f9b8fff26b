"""Any CalDAV server as a further account, end to end through the real daemon: a plain
Radicale and Xandikos (the contract suite's servers) are mirrored, pushed to when linked,
and count for availability; and the idle cost of a further account, from a request log."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pytest
import requests

from calmirror import config, config_edit
from calmirror.account import connect
from calmirror.emulator import Emulator
from calmirror.hrefs import last_segment
from calmirror.model import scoped_id
from calmirror.state import State
from tests.conftest import Cli
from tests.contract.servers import start
from tests.helpers import APP_PASSWORD, connected_home, daemon_running, engine_for, event, wait_for


@pytest.mark.parametrize("server_name", ["radicale", "xandikos"])
def test_a_plain_caldav_server_is_mirrored_pushed_to_and_blocks_time(
    tmp_path: Path, emu: Emulator, server_name: str
) -> None:
    (tmp_path / server_name).mkdir()
    with start(server_name, tmp_path / server_name) as server:
        auth = (server.username, server.password)
        team_url = server.new_calendar("Team")
        put = requests.put(
            team_url + "standup.ics",
            data=event("team-standup", "Standup", start="20270105T080000Z", end="20270105T090000Z").encode(),
            auth=auth,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=10,
        )
        assert put.status_code in (201, 204)

        root = tmp_path / "home"
        home = connected_home(root, emu, linked=None, conflicts=("Home",))
        state = State(home.state_db)
        try:
            calendars = connect(
                home, config.load(home.config_file), state, server.username, server.password, server.url, "team"
            )
        finally:
            state.close()
        team = next(c for c in calendars if c.name == "Team")
        assert team.id == scoped_id("team", last_segment(team_url))
        config_edit.set_linked(home.config_file, team.id, also_conflict=True)

        with daemon_running(home) as run, closing(run.state()) as state:
            assert wait_for(lambda: any(e.uid == "team-standup" for e in state.mirror_items(team.id).values()), 30)
            mirror = state.mirror(team.id)
            assert mirror is not None and mirror.slug == "team-team"
            listed = requests.request(
                "PROPFIND", run.collection_url("icloud-team-team"), auth=run.auth, headers={"Depth": "1"}, timeout=10
            )
            assert listed.status_code == 207 and "standup" in listed.text

            # Push: the linked calendar is on the plain server.
            booked = event("booked-1", "Booked", start="20270105T100000Z", end="20270105T110000Z")
            assert run.put("booked.ics", booked).status_code == 201
            assert wait_for(lambda: _pushed(state, "booked-1"), 30)
            appt = state.appointment("booked-1")
            assert appt is not None and (appt.remote_href or "").startswith(team_url)
            remote = requests.get(appt.remote_href or "", auth=auth, timeout=10)
            assert remote.status_code == 200 and "UID:booked-1" in remote.text

            # Availability agrees with the sources: the plain server's event and the appointment.
            cli = Cli(root)
            run.release_pid_file()
            answer = cli("availability", "--from", "2027-01-05", "--to", "2027-01-06", "--json", "--no-daemon")
            assert answer.returncode == 0, answer.stderr
            intervals = json.loads(answer.stdout)["intervals"]
            assert [(i["start"], i["end"]) for i in intervals] == [
                ("2027-01-05T08:00:00+00:00", "2027-01-05T09:00:00+00:00"),
                ("2027-01-05T10:00:00+00:00", "2027-01-05T11:00:00+00:00"),
            ]


def _pushed(state: State, uid: str) -> bool:
    appt = state.appointment(uid)
    return appt is not None and bool(appt.remote_etag)


def test_an_idle_pass_of_a_further_account_is_one_request_per_calendar(tmp_path: Path, emu: Emulator) -> None:
    """From the second server's request log: with nothing changed, each mirrored calendar
    costs one sync-collection REPORT, and the first account's server is asked only about its own."""
    with Emulator(apple_id="work@example.com", password=APP_PASSWORD, seed="sample") as work_emu:
        home = connected_home(tmp_path / "home", emu, linked=None, conflicts=("Home",))
        state = State(home.state_db)
        try:
            connect(home, config.load(home.config_file), state, "work@example.com", APP_PASSWORD, work_emu.url, "work")
        finally:
            state.close()
        ids = [*config.load(home.config_file).icloud.conflicts]
        ids += [scoped_id("work", work_emu.calendar_id(name)) for name in ("Work", "Home")]
        config_edit.set_conflicts(home.config_file, ids)
        engine = engine_for(home)
        with engine.client() as client:
            assert all(r.error is None for r in engine.mirror_pass(client))
            emu.clear_requests()
            work_emu.clear_requests()
            assert all(r.error is None for r in engine.mirror_pass(client))
        engine.connections.close()
        engine.state.close()
        assert [(r.method, r.status) for r in work_emu.requests] == [("REPORT", 207), ("REPORT", 207)]
        assert [(r.method, r.status) for r in emu.requests] == [("REPORT", 207)]
