"""The page over plain HTTP against the real daemon: Host refusal, headers, login, CSRF,
validation next to the field, no secret rendered, and one week across page, CLI and availability."""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.home import Home
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, daemon_running, wait_for


def page(run: Running, path: str = "") -> str:
    return f"{run.url}.calmirror/{path}"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found[1]


def logged_in(run: Running) -> requests.Session:
    """A browser-like session: the login form, its token, the cookie."""
    session = requests.Session()
    form = session.get(page(run, "login"), timeout=10)
    answer = session.post(
        page(run, "login"),
        data={"csrf": csrf_of(form.text), "username": run.auth[0], "password": run.auth[1]},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/.calmirror/" in cookie
    return session


def test_a_foreign_host_is_refused_on_the_page_and_on_caldav(running: Running) -> None:
    port = urlsplit(running.url).port
    for method, url in (("GET", page(running, "login")), ("PROPFIND", running.collection_url("appointments"))):
        refused = requests.request(
            method, url, auth=running.auth, headers={"Host": f"rebound.example:{port}", "Depth": "0"}, timeout=10
        )
        assert refused.status_code == 421
        assert refused.text.count("\n") == 1 and "own address" in refused.text
        for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
            fine = requests.request(method, url, auth=running.auth, headers={"Host": host, "Depth": "0"}, timeout=10)
            assert fine.status_code in (200, 207), (host, fine.status_code)
    wrong_port = requests.get(page(running, "login"), headers={"Host": "127.0.0.1:1"}, timeout=10)
    assert wrong_port.status_code == 421


def test_every_answer_forbids_framing_caching_and_foreign_content(running: Running) -> None:
    for answer in (
        requests.get(page(running, "login"), timeout=10),
        requests.get(page(running, "week"), auth=running.auth, timeout=10),
        requests.get(page(running, "outbox"), auth=running.auth, timeout=10),
    ):
        assert answer.status_code == 200
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cache-Control"] == "no-store"
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert "<script" not in answer.text and "style=" not in answer.text


def test_without_login_the_page_sends_you_to_log_in(running: Running) -> None:
    answer = requests.get(page(running, "week"), allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/.calmirror/login")
    assert requests.get(page(running, "week.json"), timeout=10).status_code == 401
    wrong = requests.get(page(running, "week"), auth=(running.auth[0], "nope"), allow_redirects=False, timeout=10)
    assert wrong.status_code == 303


def test_a_wrong_login_is_shown_next_to_the_password(running: Running) -> None:
    session = requests.Session()
    form = session.get(page(running, "login"), timeout=10)
    answer = session.post(
        page(running, "login"),
        data={"csrf": csrf_of(form.text), "username": running.auth[0], "password": "wrong"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert re.search(r'id="password"[^>]*>\s*<p class="error" id="password-error">wrong username', answer.text)
    assert "Set-Cookie" not in answer.headers


def test_posts_without_the_csrf_token_are_refused(running: Running) -> None:
    session = logged_in(running)
    for data in ({}, {"csrf": "0" * 64}):
        refused = session.post(page(running, "outbox/retry"), data=data, allow_redirects=False, timeout=10)
        assert refused.status_code == 403 and "CSRF" in refused.text
    basic = requests.post(page(running, "outbox/retry"), auth=running.auth, allow_redirects=False, timeout=10)
    assert basic.status_code == 403
    token = csrf_of(session.get(page(running, "outbox"), timeout=10).text)
    done = session.post(page(running, "outbox/retry"), data={"csrf": token}, allow_redirects=False, timeout=10)
    assert done.status_code == 303


def test_the_calendars_form_refuses_what_the_cli_refuses_in_its_words(running: Running, cli_for: Cli) -> None:
    session = logged_in(running)
    html = session.get(page(running, "calendars"), timeout=10).text
    state = running.state()
    try:
        ids = {c.name: c.id for c in state.calendars()}
    finally:
        state.close()
    answer = session.post(
        page(running, "calendars"),
        data={"csrf": csrf_of(html), "linked": ids["Family"], "conflict": [ids["Work"], ids["Reminders"]]},
        timeout=10,
    )
    assert answer.status_code == 400
    said = cli_for("link", "Family")
    assert said.returncode == 2
    cli_words = said.stderr.strip().removeprefix("calmirror: ")
    assert cli_words and cli_words in answer.text.replace("&#39;", "'")
    assert re.search(r'aria-label="Link Family"[^>]*>\s*<p class="error"', answer.text)
    assert re.search(
        r'aria-label="Reminders blocks time"[^>]*>\s*<p class="error"[^>]*>Reminders: holds reminders', answer.text
    )
    assert running.daemon.settings.icloud.linked == ids["Work"]  # nothing changed


def cli_words(said: subprocess.CompletedProcess[str]) -> str:
    """What the CLI refused with: its last line, without the `calmirror: ` prefix."""
    assert said.returncode != 0, said.stdout
    return said.stderr.strip().splitlines()[-1].removeprefix("calmirror: ")


def error_of(answer: requests.Response, field: str) -> str:
    """The error shown next to `field`, as the browser shows it (unescaped)."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', answer.text)
    assert found, f"no error next to {field}"
    return html.unescape(found[1])


def test_privacy_and_subscriptions_are_refused_in_the_cli_words(running: Running, cli_for: Cli) -> None:
    session = logged_in(running)
    state = running.state()
    try:
        ids = {c.name: c.id for c in state.calendars()}
    finally:
        state.close()
    webcal = "webcal://p01-calendars.icloud.com/published/2/holidays.ics"
    form = session.get(page(running, "calendars"), timeout=10).text
    answer = session.post(
        page(running, "calendars"),
        data={
            "csrf": csrf_of(form),
            "linked": ids["Work"],
            "conflict": [ids["Work"], ids["Home"], webcal],
            f"details-{ids['Family']}": "busy",  # Family is not a conflict calendar
        },
        timeout=10,
    )
    assert answer.status_code == 400
    rows = re.findall(r'<tr id="cal-(\d+)" data-calendar="([^"]+)"', answer.text)
    family = next(index for index, name in rows if name == "Family")
    assert error_of(answer, f"details-{family}") == cli_words(cli_for("privacy", "Family", "busy"))
    assert error_of(answer, "conflicts") == cli_words(cli_for("conflicts", "add", webcal))
    assert "Family" not in running.daemon.settings.icloud.conflicts  # nothing changed


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Running]:
    """A daemon on a home never connected to iCloud: the page shows the connect form."""
    root = tmp_path / "calmirror"
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n", encoding="utf-8")
    with daemon_running(home) as run:
        yield run


def test_the_connect_form_refuses_what_connect_refuses_in_its_words(fresh: Running, emu: Emulator) -> None:
    cli = Cli(fresh.home.data_dir)
    session = logged_in(fresh)
    url = page(fresh, "connection/connect")
    form = session.get(page(fresh, "connection"), timeout=10).text
    typed = {"csrf": csrf_of(form), "apple_id": "nobody", "password": "", "server": "ftp://caldav.example/"}
    answer = session.post(url, data=typed, timeout=10)
    assert answer.status_code == 400
    assert error_of(answer, "apple_id") == cli_words(cli("connect", "--apple-id", "nobody"))
    empty = cli("connect", "--apple-id", APPLE_ID, "--password-stdin", input="\n")
    assert error_of(answer, "password") == cli_words(empty)
    ftp = cli("connect", "--apple-id", APPLE_ID, "--server", typed["server"], "--password-stdin", input="x\n")
    assert error_of(answer, "server") == cli_words(ftp)

    # A password of another shape: the CLI warns and tries; iCloud refuses; the page says both, in order.
    wrong = {**typed, "apple_id": APPLE_ID, "password": "hunter2", "server": emu.url}
    answer = session.post(url, data=wrong, timeout=30)
    assert answer.status_code == 400 and "hunter2" not in answer.text
    said = cli("connect", "--apple-id", APPLE_ID, "--server", emu.url, "--password-stdin", input="hunter2\n")
    assert said.returncode == 3
    lines = [line.removeprefix("calmirror: ") for line in said.stderr.strip().splitlines()]
    assert lines[0].startswith("warning: this does not look like an app-specific password")
    assert error_of(answer, "password").splitlines() == lines
    assert fresh.state().account() is None


def test_week_form_errors_sit_next_to_their_field(running: Running) -> None:
    answer = requests.get(
        page(running, "week"),
        params={"start": "someday", "slot": "0m", "within": "9-17"},
        auth=running.auth,
        timeout=10,
    )
    assert answer.status_code == 400
    assert re.search(r'id="start"[^>]*>\s*<p class="error" id="start-error">', answer.text)
    assert re.search(r'id="slot"[^>]*>\s*<p class="error" id="slot-error">', answer.text)
    assert "within-error" not in answer.text  # 9-17 is fine


def test_no_secret_is_rendered(running: Running) -> None:
    session = logged_in(running)
    pages = [session.get(page(running, p), timeout=10).text for p in ("connection", "calendars", "outbox", "week")]
    for body in pages:
        assert APP_PASSWORD not in body and running.auth[1] not in body
    token = csrf_of(pages[0])
    wrong = session.post(
        page(running, "connection/reconnect"), data={"csrf": token, "new_password": "wxyz-wxyz-wxyz-wxyz"}, timeout=10
    )
    assert wrong.status_code == 400 and "wxyz-wxyz-wxyz-wxyz" not in wrong.text
    assert re.search(
        r'id="new_password"[^>]*>\s*<p class="error" id="new_password-error">[^<]*app-specific', wrong.text
    )
    # Empty keeps the stored password and checks it again, as Enter at `connect --again`'s prompt.
    again = session.post(
        page(running, "connection/reconnect"),
        data={"csrf": token, "new_password": ""},
        allow_redirects=False,
        timeout=30,
    )
    assert again.status_code == 303 and again.headers["Location"].endswith("connection?done=reconnected")


def test_page_cli_and_availability_show_one_week(running: Running, cli_for: Cli) -> None:
    assert wait_for(lambda: all(m.last_sync for m in running.state().mirrors()), 20)
    params = {"start": "2026-12-07", "slot": "30m", "within": "09:00-17:00"}
    served = requests.get(page(running, "week.json"), params=params, auth=running.auth, timeout=30).json()
    html = requests.get(page(running, "week"), params=params, auth=running.auth, timeout=30).text
    terminal = json.loads(cli_for("week", "2026-12-07", "--json").stdout)
    alone = json.loads(cli_for("week", "2026-12-07", "--json", "--no-daemon").stdout)
    busy = json.loads(cli_for("availability", "--from", "2026-12-07", "--to", "2026-12-14", "--json").stdout)
    assert served == terminal == alone
    assert served["busy"] == busy["intervals"] and len(busy["intervals"]) > 5
    shown = re.findall(r'class="block[^"]*"\s+data-source="[^"]+" data-start="([^"]+)" data-end="([^"]+)"', html)
    events = [(e["start"], e["end"]) for d in served["days"] for e in d["events"] if not e["all_day"]]
    assert shown and shown == events
    assert "Dentist" in html and "Advent check-in" in html


@pytest.fixture
def cli_for(running: Running) -> Cli:
    """The CLI on the running daemon's home (it asks that daemon; nothing here signals it)."""
    return Cli(running.home.data_dir)


def test_the_busy_feed_is_off_until_enabled_serves_no_titles_and_rotates(running: Running, cli_for: Cli) -> None:
    import datetime as dt

    from calmirror.web import feed

    assert wait_for(lambda: all(m.last_sync for m in running.state().mirrors()), 20)
    assert cli_for("feed", "url").returncode == 2
    url = cli_for("feed", "enable").stdout.strip()
    assert url.startswith(f"{running.url}.calmirror/feed/") and url.endswith(".ics")
    assert cli_for("feed", "url").stdout.strip() == url == cli_for("feed", "enable").stdout.strip()
    served = requests.get(url, timeout=30)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/calendar")
    start, end = feed.window(dt.datetime.now(dt.UTC))
    fmt = "%Y-%m-%dT%H:%M:%S"
    busy = json.loads(
        cli_for(
            "availability", "--from", start.strftime(fmt), "--to", end.strftime(fmt), "--tz", "UTC", "--json"
        ).stdout
    )
    assert served.text.count("BEGIN:VEVENT") == len(busy["intervals"])
    assert served.text.count("SUMMARY:") == served.text.count("SUMMARY:Busy")
    for title in ("Dentist", "Advent", "Team sync", "ATTENDEE", "LOCATION"):
        assert title not in served.text
    port = urlsplit(running.url).port
    assert requests.get(url, headers={"Host": f"feed.example:{port}"}, timeout=10).status_code == 421

    rotated = cli_for("feed", "rotate").stdout.strip()
    assert rotated != url
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(rotated, timeout=10).status_code == 200
    assert cli_for("feed", "disable").returncode == 0
    assert requests.get(rotated, timeout=10).status_code == 404
