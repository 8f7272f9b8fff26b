"""`calmirror feeds …` and `calmirror accounts remove` while `calmirror run` runs as its own
process, as a user has it: the CLI changes the state and sends SIGHUP, the daemon takes the
change up (a new feed fetched at once, a removed account's mirrors gone and its server no
longer asked), with nothing done twice by the CLI beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import requests

from calmirror import config, control, credentials
from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.local.layout import feed_id
from calmirror.model import scoped_id
from calmirror.state import State
from calmirror.testing.feed_server import FeedServer, feed_text
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, busy_json, event, wait_for
from tests.integration.test_accounts import WORK_ID, _two_account_home

ROTA = [("shift-1", "20261202T090000Z", "20261202T120000Z"), ("shift-2", "20261203T130000Z", "20261203T170000Z")]


@contextmanager
def calmirror_run(home: Home) -> Iterator[str]:
    """`calmirror run` on `home` in a child process; yields its local URL once it serves."""
    env = {**os.environ, "CALMIRROR_HOME": str(home.data_dir)}
    log = home.data_dir / "daemon.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "calmirror", "run"], env=env, stderr=sink, stdout=sink)
    try:
        if not wait_for(lambda: control.read_record(home.pid_file) is not None, 30):
            proc.kill()
            pytest.fail(f"the daemon never started: {log.read_text()[-2000:]}")
        record = control.read_record(home.pid_file)
        assert record is not None and record.pid == proc.pid
        yield record.url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _fresh_home(root: Path) -> Home:
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n")
    return home


def test_feeds_added_changed_and_removed_by_the_cli_take_effect_in_the_running_daemon(tmp_path: Path) -> None:
    home = _fresh_home(tmp_path / "home")
    cli = Cli(home.data_dir)
    with FeedServer() as server, calmirror_run(home) as url, closing(State(home.state_db)) as state:
        server.publish("/rota.ics", feed_text(ROTA))
        added = cli("feeds", "add", server.url("/rota.ics"), "--allow-http", "--name", "rota")
        assert added.returncode == 0, added.stderr
        # The command waits for the daemon's fetch and tells what it found.
        assert "feed-rota/: 2 event(s), polled every 15m" in added.stdout
        assert (state.mirror(feed_id("rota")) or object()).__dict__.get("item_count") == 2
        assert len(server.requests_to("/rota.ics")) == 1  # the daemon's fetch; the CLI only signalled it
        login = credentials.local_account(home)
        listing = requests.request(
            "PROPFIND", f"{url}{login.username}/feed-rota/", auth=(login.username, login.password),
            headers={"Depth": "1"}, timeout=10,
        )  # fmt: skip
        assert listing.status_code == 207 and "shift-1.ics" in listing.text
        assert len(busy_json(home, end="2026-12-08T00:00")) == 2  # the running daemon counts it

        changed = cli("feeds", "privacy", "rota", "busy")
        assert changed.returncode == 0 and "the running daemon rewrites" in changed.stdout
        assert wait_for(lambda: len(server.requests_to("/rota.ics")) == 2, 30)
        store_dir = home.store_dir / "collection-root" / login.username / "feed-rota"

        def busy_only() -> bool:
            texts = [p.read_text() for p in store_dir.glob("*.ics")]
            return len(texts) == 2 and all("Shift shift-" not in t for t in texts)

        assert wait_for(busy_only, 30)

        removed = cli("feeds", "remove", "rota")
        assert removed.returncode == 0, removed.stderr
        assert state.feed("rota") is None and not store_dir.exists()
        gone = requests.request(
            "PROPFIND", f"{url}{login.username}/feed-rota/", auth=(login.username, login.password),
            headers={"Depth": "0"}, timeout=10,
        )  # fmt: skip
        assert gone.status_code == 404
        assert busy_json(home, end="2026-12-08T00:00") == []

        # A mistyped URL was subscribed without a word while a daemon ran (most of the time):
        # the daemon's first fetch fails, so it is refused as it is without a daemon.
        typo = cli("feeds", "add", server.url("/rtoa.ics"), "--allow-http", "--name", "typo")
        assert typo.returncode == 2 and typo.stderr.strip().endswith("404; not subscribed"), typo.stderr
        assert state.feed("typo") is None and not (store_dir.parent / "feed-typo").exists()


def test_an_account_removed_while_the_daemon_runs_stops_its_traffic_and_its_mirrors(
    tmp_path: Path, emu: Emulator
) -> None:
    with Emulator(apple_id=WORK_ID, password=APP_PASSWORD, seed="sample") as work_emu:
        home = _two_account_home(tmp_path / "home", emu, work_emu)
        cli = Cli(home.data_dir)
        work_home = scoped_id("work", work_emu.calendar_id("Home"))
        login = credentials.local_account(home)
        mirror_dir = home.store_dir / "collection-root" / login.username / "icloud-work-home"
        with calmirror_run(home) as url, closing(State(home.state_db)) as state:
            assert wait_for(lambda: bool(state.mirror_items(work_home)) and mirror_dir.exists(), 30)
            assert work_emu.requests  # it was being asked

            removed = cli("accounts", "remove", "work")
            assert removed.returncode == 0, removed.stderr
            assert "Removed account work (work@example.com)" in removed.stdout
            settings = config.load(home.config_file)
            assert settings.icloud.linked is None and work_home not in settings.icloud.conflicts
            # The daemon prunes the mirror on the reload, files and records alike.
            assert wait_for(lambda: not mirror_dir.exists() and state.mirror(work_home) is None, 30)
            assert not state.mirror_items(work_home)
            listing = requests.request(
                "PROPFIND", f"{url}{login.username}/icloud-work-home/", auth=(login.username, login.password),
                headers={"Depth": "0"}, timeout=10,
            )  # fmt: skip
            assert listing.status_code == 404

            # From now on nothing goes to its server: a mirror pass and a push go to the first account only.
            work_emu.clear_requests()
            emu.clear_requests()
            assert cli("sync", "--now").returncode == 0
            assert wait_for(lambda: len(emu.requests) > 0, 30)  # the pass ran
            put = requests.put(
                f"{url}{login.username}/appointments/after.ics",
                data=event("after-remove", "Booked after the removal").encode(),
                auth=(login.username, login.password), headers={"Content-Type": "text/calendar"}, timeout=10,
            )  # fmt: skip
            assert put.status_code == 201
            assert cli("sync", "--now").returncode == 0
            wait_for(lambda: False, 3)  # a few seconds of the daemon's loops
            assert work_emu.requests == []
            assert [a.name for a in state.accounts()] == [""]
