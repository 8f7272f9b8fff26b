"""The page in a real browser (Playwright driving the distribution's Chromium) against the real
daemon and the iCloud emulator: a first-time set-up, then an appointment, a failed push and its
retry, a wrong password and a form without its CSRF token.

The tests share one daemon and run in file order: each starts where the previous one left the
account. Screenshots of the week page go to `artifacts/` (git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.testing.feed_server import FeedServer, feed_text
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, daemon_running, event, wait_for

WORK_ID = "work@example.com"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None  # type: ignore[assignment]
if CHROMIUM is None or sync_playwright is None:
    pytest.skip(
        "browser tests need Chromium: `apt-get install chromium` and `pip install playwright` enable them",
        allow_module_level=True,
    )

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WEEK = "week?start=2026-12-07"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


@dataclass
class World:
    emu: Emulator
    run: Running
    page: Page

    def go(self, path: str) -> None:
        self.page.goto(f"{self.run.url}.calmirror/{path}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def world(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A daemon on a home never connected to iCloud, and a browser page for it."""
    root = tmp_path_factory.mktemp("browser") / "calmirror"
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n", encoding="utf-8")
    with (
        Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu,
        daemon_running(home) as run,
    ):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(10_000)
        yield World(emu, run, context.new_page())
        context.close()


def test_first_time_setup_wrong_password_then_link_conflicts_and_the_week(world: World) -> None:
    page = world.page
    world.go("")
    expect(page).to_have_url(f"{world.run.url}.calmirror/login")
    page.fill("#username", world.run.auth[0])
    page.fill("#password", world.run.auth[1])
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Connection")

    page.fill("#apple_id", APPLE_ID)
    page.fill("#password", "wxyz-wxyz-wxyz-wxyz")
    page.click("summary:has-text('Server')")
    page.fill("#server", world.emu.url)
    page.click("button:has-text('Connect')")
    error = page.locator("#password + #password-error")  # right under the field it is about
    expect(error).to_contain_text("app-specific password")
    expect(page.locator("#apple_id")).to_have_value(APPLE_ID)
    assert "wxyz-wxyz-wxyz-wxyz" not in page.content()

    page.fill("#password", APP_PASSWORD)
    page.click("button:has-text('Connect')")
    expect(page.locator("h1")).to_have_text("Calendars")
    page.get_by_label("Link Work").check()
    page.get_by_label("Home blocks time").check()
    page.get_by_label("Details copied from Home").select_option("busy")
    page.click("button:has-text('Save')")
    expect(page.locator(".done")).to_contain_text("Saved")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "calendars.png"), full_page=True)

    world.go(WEEK)
    for _ in range(100):
        if (
            page.locator(".block", has_text="Advent check-in").count()
            and page.locator('.block[data-source="icloud-home"]').count()
        ):
            break
        page.wait_for_timeout(200)
        page.reload()
    monday = page.locator('.day[data-date="2026-12-07"]')
    expect(monday.locator(".block", has_text="Advent check-in")).to_contain_text("Work")
    expect(monday.locator(".block", has_text="Home")).to_contain_text("Busy")  # busy only: no title
    assert "Dentist" not in page.content()
    expect(monday.locator(".free li").first).to_have_text("free 09:30–17:00")
    # The hour gutter: 24 labels, each on its hour's line in every day's timeline.
    expect(page.locator(".hours span")).to_have_count(24)
    label = page.locator(".hours span", has_text="07:00").bounding_box()
    block = monday.locator(".block", has_text="Advent check-in").bounding_box()
    assert label and block and abs(label["y"] + label["height"] / 2 - block["y"]) < 4, (label, block)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "week-after-setup.png"), full_page=True)


def test_an_appointment_written_over_caldav_appears_in_the_week(world: World) -> None:
    put = world.run.put("call.ics", event("browser-appt-1", "Call with Dana", "20261208T100000Z", "20261208T110000Z"))
    assert put.status_code == 201
    world.go(WEEK)
    block = world.page.locator('.day[data-date="2026-12-08"] .block', has_text="Call with Dana")
    expect(block).to_contain_text("Appointments")
    expect(block).to_contain_text("10:00")
    world.page.screenshot(path=str(ARTIFACTS / "week-with-appointment.png"), full_page=True)
    # A phone-sized window: the days one under another, without the hour gutter.
    world.page.set_viewport_size({"width": 420, "height": 900})
    try:
        world.go(WEEK)
        expect(world.page.locator(".hours")).to_be_hidden()
        monday = world.page.locator('.day[data-date="2026-12-07"]').bounding_box()
        tuesday = world.page.locator('.day[data-date="2026-12-08"]').bounding_box()
        assert monday and tuesday and tuesday["y"] >= monday["y"] + monday["height"], (monday, tuesday)
        # Each day lists its blocks in time order with their end, not a 24-hour grid of empty rows.
        blocks = world.page.locator('.day[data-date="2026-12-08"] .timeline .block')
        tops = [box["y"] for box in (blocks.nth(i).bounding_box() for i in range(blocks.count())) if box]
        assert len(tops) >= 2 and tops == sorted(tops), tops
        expect(blocks.filter(has_text="Call with Dana")).to_contain_text("10:00–11:00", use_inner_text=True)
        timeline = world.page.locator('.day[data-date="2026-12-08"] .timeline').bounding_box()
        assert timeline and timeline["height"] < 40 * blocks.count(), timeline
        world.page.screenshot(path=str(ARTIFACTS / "week-narrow.png"), full_page=True)
    finally:
        world.page.set_viewport_size({"width": 1400, "height": 1000})


def test_a_failed_push_shows_its_reason_and_retry_delivers_it(world: World) -> None:
    emu = world.emu
    home_cal = emu.calendar_id("Home")
    emu.put_item(home_cal, "clash.ics", event("browser-clash-1", "In Home"))
    world.run.put("clash.ics", event("browser-clash-1", "Local clash", "20261209T100000Z", "20261209T110000Z"))
    state = world.run.state()
    try:
        assert wait_for(lambda: bool(state.outbox(("failed",))), 10)
    finally:
        state.close()
    world.go("outbox")
    row = world.page.locator("#outbox tr.failed", has_text="Local clash")
    expect(row.locator(".reason")).to_contain_text("another iCloud calendar")
    world.page.screenshot(path=str(ARTIFACTS / "outbox-failed.png"), full_page=True)
    emu.delete_item(home_cal, "clash.ics")
    world.page.click("button:has-text('Retry failed appointments')")
    expect(world.page.locator(".done")).to_contain_text("queued again")

    def delivered() -> bool:
        return any("UID:browser-clash-1" in body for body in emu.items(emu.calendar_id("Work")).values())

    assert wait_for(delivered, 10)
    for _ in range(50):
        world.go("outbox")
        if world.page.locator("#outbox-empty").count():
            break
        world.page.wait_for_timeout(200)
    expect(world.page.locator("#outbox-empty")).to_be_visible()


def test_a_form_without_its_csrf_token_is_refused(world: World) -> None:
    url = f"{world.run.url}.calmirror/outbox/retry"
    refused = world.page.request.post(url, form={"csrf": ""}, max_redirects=0)
    assert refused.status == 403 and "CSRF" in refused.text()
    world.go("outbox")
    token = world.page.locator("form[action$='outbox/retry'] input[name=csrf], form[action$='logout'] input[name=csrf]")
    accepted = world.page.request.post(url, form={"csrf": token.first.input_value()}, max_redirects=0)
    assert accepted.status == 303


def test_a_second_account_and_a_feed_set_up_and_removed_in_the_browser(world: World) -> None:
    """After the first set-up: a second account added by name, one of its calendars ticked as
    `work/Home`, a feed subscribed, both in the week; then the account removed again."""
    page = world.page
    rota = feed_text([("rota-1", "20261210T140000Z", "20261210T160000Z")])
    with Emulator(apple_id=WORK_ID, password=APP_PASSWORD, seed="sample") as work, FeedServer() as feeds:
        feeds.publish("/rota.ics", rota)
        world.go("connection")
        expect(page.locator("#account-default .health")).to_contain_text("Connected")
        page.fill("#name", "work")
        page.fill("#apple_id", WORK_ID)
        page.fill("#password", APP_PASSWORD)
        page.click("summary:has-text('Server')")
        page.fill("#server", work.url)
        page.click("button:has-text('Add account')")
        expect(page.locator("h1")).to_have_text("Calendars")
        expect(page.locator('tr[data-calendar="work/Home"]')).to_be_visible()
        expect(page.locator('tr[data-calendar="default/Work"] input[name=linked]')).to_be_checked()
        page.get_by_label("work/Home blocks time").check()
        page.click("button:has-text('Save')")
        expect(page.locator(".done")).to_contain_text("Saved")

        page.fill("#feed_url", feeds.url("/rota.ics"))
        page.click("button:has-text('Subscribe')")
        expect(page.locator("#feed_url + #feed_url-error")).to_contain_text("--allow-http")
        page.check("#feed_allow_http")
        page.fill("#feed_name", "rota")
        page.click("button:has-text('Subscribe')")
        expect(page.locator(".done")).to_contain_text("Subscribed")
        row = page.locator('tr[data-feed="rota"]')
        for _ in range(100):
            if row.locator(".events").inner_text() == "1":
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(row.locator(".events")).to_have_text("1")
        page.screenshot(path=str(ARTIFACTS / "calendars-two-accounts-and-a-feed.png"), full_page=True)

        world.go(WEEK)
        for _ in range(100):
            if (
                page.locator('.block[data-source="feed-rota"]').count()
                and page.locator('.block[data-source="icloud-work-home"]').count()
            ):
                break
            page.wait_for_timeout(200)
            page.reload()
        thursday = page.locator('.day[data-date="2026-12-10"]')
        expect(thursday.locator('.block[data-source="feed-rota"]')).to_contain_text("Shift rota-1")
        expect(page.locator('.block[data-source="icloud-work-home"]').first).to_contain_text("work/Home")
        page.screenshot(path=str(ARTIFACTS / "week-two-accounts-and-a-feed.png"), full_page=True)

        world.go("connection")
        expect(page.locator("#account-work .health")).to_contain_text("Connected")
        page.screenshot(path=str(ARTIFACTS / "connection-two-accounts.png"), full_page=True)
        page.get_by_label("Disconnect work").click()
        expect(page.locator(".done")).to_contain_text("Account removed")
        expect(page.locator("#account-work")).to_have_count(0)
        world.go("calendars")
        expect(page.locator('tr[data-calendar="Home"]')).to_be_visible()  # one account: bare names again
        page.get_by_label("Remove feed rota").click()
        expect(page.locator(".done")).to_contain_text("Unsubscribed")
        expect(page.locator("#feeds-none")).to_be_visible()


def test_every_page_fits_a_phone_screen(world: World) -> None:
    """On a 390 px phone every page fits the screen's width and every link of the header can be
    reached: a table wider than the screen scrolls inside its card, not the whole page."""
    page = world.page
    page.set_viewport_size({"width": 390, "height": 800})
    try:
        for path in (WEEK, "calendars", "connection", "outbox"):
            world.go(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
            for link in page.locator("header.top a, header.top button").all():
                box = link.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (path, link.inner_text(), box)
            page.screenshot(path=str(ARTIFACTS / f"phone-{path.split('?')[0]}.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
