"""Push through the real daemon: local CalDAV writes reach the emulator once, with their latest content."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from calmirror import credentials
from calmirror.emulator import Emulator
from tests.helpers import APPLE_ID, Running, connected_home, daemon_running, event, start_daemon, wait_for


def remote_with(emu: Emulator, cal: str, text: str) -> list[str]:
    return [body for body in emu.items(emu.calendar_id(cal)).values() if text in body]


def test_create_edit_delete_reach_icloud_once(running: Running, emu: Emulator) -> None:
    assert running.put("a1.ics", event("appt-1", "First version")).status_code == 201
    assert wait_for(lambda: len(remote_with(emu, "Work", "UID:appt-1")) == 1, 2)
    pushed = remote_with(emu, "Work", "UID:appt-1")[0]
    assert "X-CALMIRROR" not in pushed
    assert running.put("a1.ics", event("appt-1", "Second version")).status_code in (201, 204)
    assert wait_for(lambda: any("Second version" in b for b in remote_with(emu, "Work", "UID:appt-1")), 2)
    assert len(remote_with(emu, "Work", "UID:appt-1")) == 1
    assert running.delete("a1.ics").status_code in (200, 204)
    assert wait_for(lambda: not remote_with(emu, "Work", "UID:appt-1"), 2)
    puts = [r for r in emu.requests if r.method == "PUT"]
    assert [r.status for r in puts] == [201, 204]


def test_event_without_dtend_is_made_acceptable_and_local_copy_kept(running: Running, emu: Emulator) -> None:
    body = event("no-end", "Quick call", end=None, extra="ATTENDEE;CN=Guest:mailto:guest@example.org\r\n")
    assert running.put("n.ics", body).status_code == 201
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:no-end")), 2)
    remote = remote_with(emu, "Work", "UID:no-end")[0]
    assert "DTEND" in remote and "SCHEDULE-AGENT=CLIENT" in remote.replace("\r\n ", "")
    local = requests.get(running.href("appointments", "n.ics"), auth=running.auth, timeout=5).text
    assert "DTEND" not in local and "SCHEDULE-AGENT" not in local


def test_status_cancelled_deletes_in_icloud_by_default(running: Running, emu: Emulator) -> None:
    running.put("c.ics", event("cancel-me", "To cancel"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:cancel-me")), 2)
    running.put("c.ics", event("cancel-me", "To cancel", extra="STATUS:CANCELLED\r\n"))
    assert wait_for(lambda: not remote_with(emu, "Work", "UID:cancel-me"), 2)


def test_blocked_slots_and_mirrors_are_never_pushed(running: Running, emu: Emulator) -> None:
    before = len([r for r in emu.requests if r.method in ("PUT", "DELETE")])
    assert running.put("b.ics", event("blocked-1", "Lunch"), collection="blocked").status_code == 201
    running.put("a.ics", event("appt-after", "After"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:appt-after")), 2)
    writes = [r for r in emu.requests if r.method in ("PUT", "DELETE")][before:]
    assert len(writes) == 1 and not remote_with(emu, "Work", "blocked-1")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PROPPATCH", "MKCOL", "MKCALENDAR", "MOVE", "COPY"])
def test_every_write_on_a_mirror_is_refused(running: Running, method: str) -> None:
    mirror = f"{running.url}{running.auth[0]}/icloud-home/"
    items = requests.request("PROPFIND", mirror, auth=running.auth, headers={"Depth": "1"}, timeout=10)
    assert items.status_code == 207
    target = {"PUT": mirror + "new.ics", "MKCOL": mirror + "sub/", "MKCALENDAR": mirror + "sub/"}.get(method, mirror)
    headers = (
        {"Destination": f"{running.url}{running.auth[0]}/appointments/moved.ics"} if method in ("MOVE", "COPY") else {}
    )
    data = (
        event("x", "x")
        if method == "PUT"
        else (
            '<?xml version="1.0"?><propertyupdate xmlns="DAV:"><set><prop><displayname>Mine</displayname>'
            "</prop></set></propertyupdate>"
            if method == "PROPPATCH"
            else None
        )
    )
    answer = requests.request(method, target, data=data, auth=running.auth, headers=headers, timeout=10)
    assert answer.status_code == 403
    after = requests.request("PROPFIND", mirror, auth=running.auth, headers={"Depth": "1"}, timeout=10)
    assert after.text.count("<response") == items.text.count("<response") or after.text.count(
        "response>"
    ) == items.text.count("response>")


def test_pushed_appointment_does_not_come_back_through_the_linked_mirror(running: Running, emu: Emulator) -> None:
    running.put("e.ics", event("echo-1", "No echo"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:echo-1")), 2)
    client = running.daemon.engine.client()
    try:
        running.daemon.engine.mirror_pass(client)
    finally:
        client.close()
    mirrored = running.daemon.engine.store.items("icloud-work")
    assert not [t for t in mirrored.values() if "echo-1" in t]


def test_icloud_503_then_recovery_honours_retry_after(running: Running, emu: Emulator) -> None:
    emu.faults.fail(count=1, status=503, retry_after=1, method="PUT")
    running.put("r.ics", event("retry-1", "Retried"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:retry-1")), 6)
    puts = [r for r in emu.requests if r.method == "PUT"]
    assert [p.status for p in puts] == [503, 201]
    assert puts[1].time - puts[0].time >= 0.95


def test_401_stops_pushing_until_reconnect(running: Running, emu: Emulator) -> None:
    emu.set_password("zzzz-zzzz-zzzz-zzzz")
    running.put("p.ics", event("pw-1", "Needs auth"))
    # The refusal may be seen first by a mirror pass, before the appointment is queued: wait for both.
    assert wait_for(lambda: (running.state().get_meta("health") or {}).get("state") == "auth_failed", 5)
    assert wait_for(lambda: len(running.state().outbox(("pending",))) == 1, 5)
    # the user makes a new app-specific password and reconnects (stores it, SIGHUP reloads)
    credentials.store_icloud_password(running.home, APPLE_ID, "zzzz-zzzz-zzzz-zzzz")
    running.daemon.reload_requested.set()
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:pw-1")), 8)


def test_uid_already_in_another_calendar_fails_that_row_only(running: Running, emu: Emulator) -> None:
    emu.put_item(emu.calendar_id("Home"), "dup.ics", event("dup-1", "Already in Home"))
    running.put("d.ics", event("dup-1", "Clashing"))
    running.put("ok.ics", event("ok-1", "Fine"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:ok-1")), 3)
    assert wait_for(lambda: bool(running.state().outbox(("failed",))), 3)
    failed = running.state().outbox(("failed",))
    assert failed[0].uid == "dup-1" and "another iCloud calendar" in (failed[0].last_error or "")


def test_changed_in_icloud_412_reapplies_local_and_404_recreates(running: Running, emu: Emulator) -> None:
    running.put("x.ics", event("conflict-1", "Local v1"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:conflict-1")), 2)
    work = emu.calendar_id("Work")
    name = next(h for h, b in emu.items(work).items() if "conflict-1" in b).rsplit("/", 1)[-1]
    emu.put_item(work, name, event("conflict-1", "Edited on the iPhone"))  # ETag changes -> 412
    running.put("x.ics", event("conflict-1", "Local v2"))
    assert wait_for(lambda: any("Local v2" in b for b in remote_with(emu, "Work", "UID:conflict-1")), 3)
    emu.delete_item(work, name)  # gone in iCloud -> the next update recreates it
    running.put("x.ics", event("conflict-1", "Local v3"))
    assert wait_for(lambda: any("Local v3" in b for b in remote_with(emu, "Work", "UID:conflict-1")), 3)


def test_changes_made_while_the_daemon_was_down_are_pushed_at_start(tmp_path: Path, emu: Emulator) -> None:
    from calmirror.local.server import LocalServer

    home = connected_home(tmp_path, emu, conflicts=("Work",))
    run = start_daemon(home)
    run.put("kept.ics", event("down-1", "Before"))
    run.put("gone.ics", event("down-2", "Deleted while down"))
    assert wait_for(lambda: len(remote_with(emu, "Work", "UID:down-")) == 2, 3)
    run.stop()
    # A client writes through a bare local server while the daemon is down: no watcher, no outbox.
    acct = credentials.local_account(home)
    bare = LocalServer(home.store_dir, port=0, username=acct.username, password=acct.password)
    url = bare.start()
    base = f"{url}{acct.username}/appointments/"
    requests.put(
        base + "kept.ics",
        data=event("down-1", "Edited while down").encode(),
        auth=run.auth,
        headers={"Content-Type": "text/calendar"},
        timeout=10,
    )
    requests.put(
        base + "new.ics",
        data=event("down-3", "Created while down").encode(),
        auth=run.auth,
        headers={"Content-Type": "text/calendar"},
        timeout=10,
    )
    requests.delete(base + "gone.ics", auth=run.auth, timeout=10)
    bare.stop()
    with daemon_running(home):
        assert wait_for(lambda: any("Edited while down" in b for b in remote_with(emu, "Work", "UID:down-1")), 3)
        assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:down-3")), 3)
        assert wait_for(lambda: not remote_with(emu, "Work", "UID:down-2"), 3)


def test_after_relinking_old_appointments_stay_and_new_ones_go_to_the_new_calendar(
    running: Running, emu: Emulator
) -> None:
    from calmirror import config_edit

    running.put("old.ics", event("old-1", "Old v1"))
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:old-1")), 2)
    config_edit.set_linked(running.home.config_file, emu.calendar_id("Home"), also_conflict=True)
    running.daemon.reload_requested.set()
    assert wait_for(lambda: running.daemon.settings.icloud.linked == emu.calendar_id("Home"), 5)
    running.put("old.ics", event("old-1", "Old v2"))
    running.put("new.ics", event("new-1", "New"))
    assert wait_for(lambda: any("Old v2" in b for b in remote_with(emu, "Work", "UID:old-1")), 3)
    assert wait_for(lambda: bool(remote_with(emu, "Home", "UID:new-1")), 3)
    assert not remote_with(emu, "Home", "UID:old-1") and not remote_with(emu, "Work", "UID:new-1")


def test_failed_rows_can_be_retried(running: Running, emu: Emulator, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    home_cal = emu.calendar_id("Home")
    emu.put_item(home_cal, "clash.ics", event("clash-1", "In Home"))
    running.put("c.ics", event("clash-1", "Local"))
    assert wait_for(lambda: bool(running.state().outbox(("failed",))), 3)
    emu.delete_item(home_cal, "clash.ics")
    env = {**os.environ, "CALMIRROR_HOME": str(running.home.data_dir)}
    running.release_pid_file()  # this daemon runs in the test's own process: it must not be signalled
    result = subprocess.run(
        [sys.executable, "-m", "calmirror", "outbox", "retry"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "Re-queued 1" in result.stdout
    running.daemon.push_wake.set()  # what the CLI's SIGUSR1 does to a daemon in its own process
    assert wait_for(lambda: bool(remote_with(emu, "Work", "UID:clash-1")), 5)
