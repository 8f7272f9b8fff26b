"""The emulator's sync tokens come from per-calendar change logs: they stay valid across an
emulator restart on the same data, belong to one calendar, and every path that shows a token
(sync-collection with or without calendar-data, a ctag poll, a Depth-1 listing) agrees."""

from __future__ import annotations

from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.emulator.changelog import LOG_NAME
from calmirror.testing import APP_PASSWORD as PASSWORD
from calmirror.testing import APPLE_ID
from calmirror.testing.ical import event
from tests.integration.test_emulator import Client, responses, sync_body, text_of


def test_a_token_survives_an_emulator_restart_and_sees_what_changed_while_it_was_down(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, data_dir=str(folder), seed="empty") as emu:
        emu.put_item("home", "kept.ics", event("KEPT-1"))
        emu.put_item("home", "edited.ics", event("EDITED-1"))
        token = text_of("sync-token", Client(emu).sync("home").text) or ""
        item_folder = Path(emu.store.calendar_folder("home"))
    # Another program edits the calendar while the emulator is down: the reconcile at start logs it.
    (item_folder / "edited.ics").write_text(event("EDITED-1", summary="Edited elsewhere"), newline="")
    (item_folder / "kept.ics").unlink()
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, data_dir=str(folder), seed="empty") as again:
        client = Client(again)
        assert client.ctag_and_token("home")[1] != token
        changed = responses(client.sync("home", token).text)
        home = again.store.calendar_path("home")
        assert set(changed) == {home + "kept.ics", home + "edited.ics"}
        assert "404 Not Found" in changed[home + "kept.ics"]
        assert text_of("getetag", changed[home + "edited.ics"]) == again.item_etag("home", "edited.ics")
        again.put_item("home", "added.ics", event("ADDED-1"))
        assert set(responses(client.sync("home", token).text)) == {
            home + name for name in ("kept.ics", "edited.ics", "added.ics")
        }


def test_a_calendar_whose_log_is_lost_refuses_its_old_tokens(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, data_dir=str(folder), seed="empty") as emu:
        emu.put_item("home", "a.ics", event("A-1"))
        token = text_of("sync-token", Client(emu).sync("home").text) or ""
    for log in folder.rglob(LOG_NAME):
        log.unlink()
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, data_dir=str(folder), seed="empty") as again:
        client = Client(again)
        r = client.sync("home", token)
        assert r.status_code == 403 and "valid-sync-token" in r.text
        assert set(responses(client.sync("home").text)) == {again.store.calendar_path("home") + "a.ics"}


def test_a_token_of_one_calendar_is_refused_by_another_and_by_a_recreated_one(emu: Emulator) -> None:
    client = Client(emu)
    work = emu.calendar_id("Work")
    token = text_of("sync-token", client.sync("home").text) or ""
    r = client.sync(work, token)
    assert r.status_code == 403 and "valid-sync-token" in r.text
    extra = emu.create_calendar("Extra")
    old = text_of("sync-token", client.sync(extra).text) or ""
    emu.delete_calendar(extra)
    emu.create_calendar("Extra", cal_id=extra)
    assert client.sync(extra, old).status_code == 403


def test_every_path_that_shows_a_token_shows_the_same_one_and_the_same_changes(emu: Emulator) -> None:
    client = Client(emu)
    token = text_of("sync-token", client.sync("home").text) or ""
    assert client.put("home", "n.ics", event("N-1")).status_code == 201
    emu.put_item("home", "m.ics", event("M-1"))
    current = client.ctag_and_token("home")[1]
    with_data = sync_body(token).replace("<d:getetag/>", "<d:getetag/><c:calendar-data/>")
    r = client.request("REPORT", emu.calendar_url("home"), with_data)
    assert r.status_code == 207 and text_of("sync-token", r.text) == current
    changed = responses(r.text)
    assert set(changed) == {emu.store.calendar_path("home") + name for name in ("n.ics", "m.ics")}
    assert all("BEGIN:VCALENDAR" in block for block in changed.values())
    listing = client.propfind(f"{emu.partition_url}{emu.dsid}/calendars/", "cs:getctag", depth="1")
    assert text_of("getctag", responses(listing.text)[emu.store.calendar_path("home")]) == current
    etag_only = client.sync("home", token)
    assert text_of("sync-token", etag_only.text) == current and set(responses(etag_only.text)) == set(changed)
