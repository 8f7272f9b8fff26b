"""A further account on a plain CalDAV server (a real Radicale) whose password stops working
is told in that server's terms everywhere a person can see it: the account's health (`status`,
the Connection page), the outbox row, the event log, the mirror, `doctor` and the daemon's log.
iCloud's advice (an app-specific password at account.apple.com) is for iCloud logins only."""

from __future__ import annotations

import json
import logging
from contextlib import closing
from pathlib import Path

import pytest

from calmirror import config, config_edit
from calmirror.account import connect
from calmirror.emulator import Emulator
from calmirror.model import scoped_id
from calmirror.refused import held_line
from calmirror.state import State
from tests.conftest import Cli
from tests.contract.servers import start
from tests.helpers import APP_PASSWORD, connected_home, daemon_running, event, status_json, wait_for
from tests.web.test_page_http import logged_in, page

ICLOUD_WORDS = ("app-specific", "iCloud", "account.apple.com", "Apple ID")


def _in_servers_terms(text: str, host: str) -> None:
    assert host in text, text
    assert not [w for w in ICLOUD_WORDS if w in text], text


def test_a_radicale_account_refusing_its_password_is_told_in_radicales_terms(
    tmp_path: Path, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "radicale").mkdir()
    with start("radicale", tmp_path / "radicale") as server:
        team_url = server.new_calendar("Team")
        home = connected_home(tmp_path / "home", emu, linked=None, conflicts=("Home",))
        with closing(State(home.state_db)) as state:
            connect(home, config.load(home.config_file), state, server.username, server.password, server.url, "team")
            team = next(c.id for c in state.calendars() if c.url.rstrip("/") == team_url.rstrip("/"))
        config_edit.set_linked(home.config_file, team, also_conflict=True)
        host = server.url.split("/")[2]  # 127.0.0.1:PORT
        assert team == scoped_id("team", team.split("/", 1)[1])

        with daemon_running(home) as run, closing(run.state()) as state:
            assert wait_for(lambda: (state.mirror(team) or pytest.fail("no mirror")).last_sync is not None, 30)
            # The server's user gets a new password; ours is now refused.
            (tmp_path / "radicale" / "htpasswd").write_text(f"{server.username}:changed-elsewhere\n")
            assert run.put("r.ics", event("refused-push", "Booked after the change")).status_code == 201
            said = held_line(server.url, server.username, "team")
            assert wait_for(lambda: any(r.last_error == said for r in state.outbox()), 30)
            assert said.startswith(f"{host} refused the password of account team")
            assert "`calmirror connect --again --name team`" in said

            health = state.get_meta("health:team") or {}
            assert health.get("state") == "auth_failed"
            _in_servers_terms(health["detail"], host)
            assert f"refused the user {server.username!r} or its password" in health["detail"]
            assert "connect --again --name team" in health["detail"]

            accounts = {a["name"]: a["connection"] for a in status_json(run.home)["accounts"]}
            assert accounts["default"]["state"] == "ok"
            _in_servers_terms(accounts["team"]["detail"], host)
            events = [e.message for e in state.events(limit=20) if "refused" in e.message]
            assert events and all(host in m and "iCloud" not in m for m in events)

            html = logged_in(run).get(page(run, "connection"), timeout=10).text
            card = html[html.index('id="account-team"') :].split("</section>")[0]
            assert "Password refused: The server no longer accepts the password" in card
            _in_servers_terms(card, host)

            doctor = {c["check"]: c for c in json.loads(Cli(home.data_dir)("doctor", "--json").stdout)}
            assert not doctor["account team"]["ok"]
            assert "give its password: run `calmirror connect --again --name team`" in doctor["account team"]["detail"]
            assert "app-specific" not in doctor["account team"]["detail"]

        # A new process tries once again (the password may have been fixed meanwhile): the
        # mirror pass of `calmirror sync` meets the refusal and says it in the same words.
        synced = Cli(home.data_dir)("sync")
        assert synced.returncode != 0 and said in synced.stdout + synced.stderr, synced.stdout + synced.stderr
        with closing(State(home.state_db)) as state:
            assert (state.mirror(team) or pytest.fail("no mirror")).last_error == said

    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert logged and all("iCloud" not in line and "app-specific" not in line for line in logged)
    assert APP_PASSWORD not in caplog.text and server.password not in caplog.text
