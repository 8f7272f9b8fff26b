"""The page with more than one account and with subscribed feeds, over plain HTTP against the
real daemon, two iCloud emulators and the feed test server: every form refuses what the CLI
refuses, in its words, next to its field; what it accepts takes effect in the running daemon."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests

from calmirror import config
from calmirror.emulator import Emulator
from calmirror.local.layout import feed_id
from calmirror.model import scoped_id
from calmirror.testing.feed_server import FeedServer, feed_text
from tests.conftest import Cli
from tests.contract.servers import start
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, wait_for
from tests.web.test_page_http import cli_words, csrf_of, error_of, logged_in, page

WORK_ID = "work@example.com"
ROTA = [("shift-1", "20261202T090000Z", "20261202T120000Z"), ("shift-2", "20261203T130000Z", "20261203T170000Z")]


@pytest.fixture
def work_emu() -> Iterator[Emulator]:
    with Emulator(apple_id=WORK_ID, password=APP_PASSWORD, seed="sample") as emulator:
        yield emulator


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def post(
    session: requests.Session, run: Running, path: str, form_page: str, data: dict[str, object]
) -> requests.Response:
    """A form as the browser sends it: with the CSRF token of the page it sits on."""
    token = csrf_of(session.get(page(run, form_page), timeout=10).text)
    return session.post(page(run, path), data={"csrf": token, **data}, allow_redirects=False, timeout=60)


def test_a_second_account_is_added_used_and_removed_on_the_page(
    running: Running, work_emu: Emulator, cli_for: Cli
) -> None:
    session = logged_in(running)
    html = session.get(page(running, "connection"), timeout=10).text
    assert 'id="account-default"' in html and "Add another account" in html and 'id="name"' in html
    work = {"apple_id": WORK_ID, "password": APP_PASSWORD, "server": work_emu.url}
    url = work_emu.url

    # Refused as `calmirror connect` refuses, in its words, each next to its field.
    unnamed = post(session, running, "connection/connect", "connection", {**work, "name": ""})
    assert unnamed.status_code == 400
    said = cli_for("connect", "--apple-id", WORK_ID, "--server", url, "--password-stdin", input=APP_PASSWORD + "\n")
    assert error_of(unnamed, "name") == cli_words(said)
    bad = post(session, running, "connection/connect", "connection", {**work, "name": "Work Stuff"})
    said = cli_for(
        "connect", "--apple-id", WORK_ID, "--server", url, "--name", "Work Stuff", "--password-stdin", input="x\n"
    )
    assert error_of(bad, "name") == cli_words(said)
    twice = post(session, running, "connection/connect", "connection", {**work, "apple_id": APPLE_ID, "name": "again"})
    said = cli_for(
        "connect", "--apple-id", APPLE_ID, "--server", url, "--name", "again", "--password-stdin",
        input=APP_PASSWORD + "\n",
    )  # fmt: skip
    assert "already connected (account default)" in error_of(twice, "apple_id")
    assert error_of(twice, "apple_id") == cli_words(said)
    with closing(running.state()) as state:
        assert [a.name for a in state.accounts()] == [""]  # nothing was added

    added = post(session, running, "connection/connect", "connection", {**work, "name": "work"})
    assert added.status_code == 303 and added.headers["Location"].endswith("calendars?done=connected")
    html = session.get(page(running, "connection"), timeout=10).text
    assert 'id="account-work"' in html and APP_PASSWORD not in html

    # Every account's calendars, spelled as the CLI takes them; link, conflicts and privacy for any.
    html = session.get(page(running, "calendars"), timeout=10).text
    shown = set(re.findall(r'data-calendar="([^"]+)"', html))
    assert {"default/Work", "default/Home", "work/Work", "work/Home"} <= shown
    work_cal, work_home = (
        scoped_id("work", work_emu.calendar_id("Work")),
        scoped_id("work", work_emu.calendar_id("Home")),
    )
    with closing(running.state()) as state:
        ids = {(c.id.partition("/")[0] if "/" in c.id else "default", c.name): c.id for c in state.calendars()}
    refused = post(
        session, running, "calendars", "calendars",
        {"linked": ids[("work", "Reminders")], "conflict": [ids[("default", "Work")]]},
    )  # fmt: skip
    assert refused.status_code == 400
    assert 'aria-label="Link work/Reminders"' in refused.text
    assert "Reminders: holds reminders" in refused.text and cli_words(cli_for("link", "work/Reminders")) in (
        refused.text.replace("&#39;", "'")
    )
    chosen = {"linked": work_cal, "conflict": [ids[("default", "Work")], work_cal, work_home]}
    saved = post(session, running, "calendars", "calendars", {**chosen, f"details-{work_home}": "busy"})
    assert saved.status_code == 303, saved.text
    settings = config.load(running.home.config_file)
    assert settings.icloud.linked == work_cal and work_home in settings.icloud.conflicts
    assert settings.calendar(work_home).details == "busy"
    with closing(running.state()) as watch:
        assert wait_for(lambda: bool(watch.mirror_items(work_home)), 30)
        copies = running.daemon.engine.store.items("icloud-work-home")
        assert copies and all("Dentist" not in text for text in copies.values())  # busy only

        # Reconnect one account: its own field, its own words.
        wrong = post(
            session, running, "connection/reconnect", "connection",
            {"account": "work", "new_password": "wxyz-wxyz-wxyz-wxyz"},
        )  # fmt: skip
        assert wrong.status_code == 400 and "wxyz-wxyz-wxyz-wxyz" not in wrong.text
        assert "refused" in error_of(wrong, "new_password-work")
        assert "new_password-error" not in wrong.text  # not under the first account's field
        fine = post(session, running, "connection/reconnect", "connection", {"account": "work", "new_password": ""})
        assert fine.status_code == 303

        # The first account cannot go while another is there: the CLI's words.
        first = post(session, running, "connection/disconnect", "connection", {"account": "default"})
        assert first.status_code == 400
        assert error_of(first, "disconnect-default") == cli_words(cli_for("disconnect"))

        # Removing the further one: forgotten, its calendars dropped from the config, its mirrors gone,
        # and no more requests to its server.
        removed = post(session, running, "connection/disconnect", "connection", {"account": "work"})
        assert removed.status_code == 303 and removed.headers["Location"].endswith("connection?done=removed")
        assert [a.name for a in watch.accounts()] == [""]
        settings = config.load(running.home.config_file)
        assert settings.icloud.linked is None and settings.icloud.conflicts == (ids[("default", "Work")],)
        assert wait_for(lambda: "work-home" not in running.daemon.engine.store.list_mirrors(), 30)
        assert wait_for(lambda: not watch.mirror_items(work_home) and watch.mirror(work_home) is None, 10)
        work_emu.clear_requests()
        running.daemon.mirror_wake.set()
        running.daemon.push_wake.set()
        assert wait_for(lambda: False, 3) is False  # a few passes' time
        assert work_emu.requests == []


def test_feeds_are_listed_added_changed_and_removed_on_the_page(
    running: Running, feeds: FeedServer, cli_for: Cli
) -> None:
    feeds.publish("/rota.ics", feed_text(ROTA), auth=("ann", "s3cret"))
    session = logged_in(running)
    html = session.get(page(running, "calendars"), timeout=10).text
    assert 'id="feeds-none"' in html and 'id="add-feed"' in html
    plain = feeds.url("/rota.ics", userinfo="ann:s3cret")

    def add(**fields: object) -> requests.Response:
        form = {"feed_url": plain, "feed_name": "", "feed_interval": "15m", "feed_privacy": "full", **fields}
        return post(session, running, "feeds/add", "calendars", form)

    # `feeds add`'s refusals, in its words, each next to its field.
    http = add()
    assert http.status_code == 400
    assert error_of(http, "feed_url") == cli_words(cli_for("feeds", "add", plain))
    assert "s3cret" not in http.text
    refusals = {
        "feed_url": (add(feed_url="file:///etc/passwd"), ("feeds", "add", "file:///etc/passwd")),
        "feed_interval": (
            add(feed_interval="5s", feed_allow_http="yes"),
            ("feeds", "add", plain, "--interval", "5s", "--allow-http"),
        ),
        "feed_name": (
            add(feed_name="no good!", feed_allow_http="yes"),
            ("feeds", "add", plain, "--name", "no good!", "--allow-http"),
        ),
        "feed_privacy": (
            add(feed_privacy="titles", feed_allow_http="yes"),
            ("feeds", "add", plain, "--privacy", "titles", "--allow-http"),
        ),
    }
    for field, (answer, command) in refusals.items():
        assert answer.status_code == 400, field
        assert error_of(answer, field) == cli_words(cli_for(*command)), field
    with closing(running.state()) as state:
        assert state.feeds() == []

        done = add(feed_name="rota", feed_allow_http="yes")
        assert done.status_code == 303 and done.headers["Location"].endswith("calendars?done=feed-added")
        # The running daemon fetches it at once.
        assert wait_for(lambda: (state.mirror(feed_id("rota")) or object()).__dict__.get("item_count") == 2, 20)
        assert wait_for(lambda: (state.feed("rota") or pytest.fail("gone")).last_poll is not None, 20)
        html = session.get(page(running, "calendars"), timeout=10).text
        row = html[html.index('data-feed="rota"') :].split("</tr>")[0]
        assert f"127.0.0.1:{feeds.port}/rota.ics" in row and "s3cret" not in html and "ann:" not in row
        assert re.search(r'class="events">2<', row) and re.search(r'class="last-poll">\d+ s ago<', row)
        assert ">15m<" in row and 'class="problem"></td>' in row
        again = add(feed_name="rota2", feed_allow_http="yes")
        assert error_of(again, "feed_url") == cli_words(cli_for("feeds", "add", plain, "--allow-http"))

        # Privacy: the mirror is rewritten with times only.
        changed = post(session, running, "feeds/privacy", "calendars", {"feed": "rota", "privacy": "busy"})
        assert changed.status_code == 303
        store = running.daemon.engine.store

        def busy_only() -> bool:
            texts = store.items("feed-rota").values()
            return len(texts) == 2 and all("Shift shift-" not in t for t in texts)

        assert wait_for(busy_only, 20)
        assert (state.feed("rota") or pytest.fail("gone")).privacy == "busy"
        odd = post(session, running, "feeds/privacy", "calendars", {"feed": "rota", "privacy": "titles"})
        assert error_of(odd, "feed-privacy-1") == cli_words(cli_for("feeds", "privacy", "rota", "titles"))

        # A feed's problem shows in its row.
        feeds.fail("/rota.ics", status=503, retry_after="600")
        state.update_feed("rota", next_poll=0.0)
        running.daemon.feeds_wake.set()
        assert wait_for(lambda: bool((state.feed("rota") or pytest.fail("gone")).last_error), 20)
        html = session.get(page(running, "calendars"), timeout=10).text
        row = html[html.index('data-feed="rota"') :].split("</tr>")[0]
        assert "503" in row

        removed = post(session, running, "feeds/remove", "calendars", {"feed": "rota"})
        assert removed.status_code == 303
        assert state.feed("rota") is None and "feed-rota" not in store.list_mirrors()
        gone = requests.request(
            "PROPFIND", running.collection_url("feed-rota"), auth=running.auth, headers={"Depth": "0"}, timeout=10
        )
        assert gone.status_code == 404
        missing = post(session, running, "feeds/remove", "calendars", {"feed": "rota"})
        assert error_of(missing, "feeds") == cli_words(cli_for("feeds", "remove", "rota"))


@pytest.fixture
def cli_for(running: Running) -> Cli:
    """The CLI on the running daemon's home; only refusals are asked of it (nothing signals the daemon)."""
    return Cli(running.home.data_dir)


def test_any_caldav_server_is_added_on_the_page_with_a_plain_user_name(
    running: Running, tmp_path: Path, cli_for: Cli
) -> None:
    """Not iCloud: a user name, not an Apple ID, and no app-specific password shape asked for."""
    (tmp_path / "radicale").mkdir()
    with start("radicale", tmp_path / "radicale") as server:
        server.new_calendar("Team")
        session = logged_in(running)
        wrong = post(
            session, running, "connection/connect", "connection",
            {"name": "team", "apple_id": server.username, "password": "not-it", "server": server.url},
        )  # fmt: skip
        assert wrong.status_code == 400 and "not-it" not in wrong.text
        refused = error_of(wrong, "password")
        assert "app-specific" not in refused and "iCloud" not in refused and "warning" not in refused
        assert f"refused the user {server.username!r} or its password" in refused
        said = cli_for(
            "connect", "--user", server.username, "--server", server.url, "--name", "team", "--password-stdin",
            input="not-it\n",
        )  # fmt: skip
        assert said.returncode == 3 and refused == cli_words(said)
        added = post(
            session, running, "connection/connect", "connection",
            {"name": "team", "apple_id": server.username, "password": server.password, "server": server.url},
        )  # fmt: skip
        assert added.status_code == 303, added.text
        html = session.get(page(running, "connection"), timeout=10).text
        card = html[html.index('id="account-team"') :].split("</section>")[0]
        assert server.username in card and "Reconnect team with a new password" in card
        calendars = session.get(page(running, "calendars"), timeout=10).text
        assert 'data-calendar="team/Team"' in calendars
