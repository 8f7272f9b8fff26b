"""Pushed appointments changed in iCloud, through the daemon: the real emulator, the real local
server, the free-busy REPORT over HTTP. Moved, retitled and deleted in iCloud, changed on both
sides, in both `[push] linked` modes, and a crash on either side of the local write: the change
counts within one mirror pass, nothing is lost or duplicated, nothing is pushed back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from calmirror import status
from calmirror.availability.sources import ask_daemon
from calmirror.emulator import Emulator
from tests.conftest import Cli
from tests.helpers import Running, connected_home, daemon_running, event, start_daemon, wait_for

DAY = dt.datetime(2029, 7, 17, tzinfo=dt.UTC)  # nothing of the sample account that day
TEN = (DAY.replace(hour=10), DAY.replace(hour=11))
TWO = (DAY.replace(hour=14), DAY.replace(hour=15))


class Crash(BaseException):
    """The process dying at this point: nothing after it runs, nothing catches it."""


def home_for(tmp_path: Path, emu: Emulator, mode: str) -> Any:
    return connected_home(
        tmp_path / "calmirror", emu, conflicts=("Work", "Home"), extra_config=f'[push]\nlinked = "{mode}"\n'
    )


@pytest.fixture(params=["two-way", "one-way"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(tmp_path: Path, emu: Emulator, mode: str) -> Iterator[Running]:
    with daemon_running(home_for(tmp_path, emu, mode)) as running:
        yield running


def in_icloud(emu: Emulator, uid: str) -> dict[str, str]:
    return {h: b for h, b in emu.items(emu.calendar_id("Work")).items() if f"UID:{uid}" in b}


def at_ten(uid: str, summary: str, extra: str = "") -> str:
    return event(uid, summary, "20290717T100000Z", "20290717T110000Z", extra=extra)


def at_two(uid: str, summary: str) -> str:
    return event(uid, summary, "20290717T140000Z", "20290717T150000Z")


def push(run: Running, emu: Emulator, uid: str, summary: str = "Call with Ada") -> str:
    """A local appointment at 10:00, pushed; returns its iCloud resource name."""
    assert run.put(f"{uid}.ics", at_ten(uid, summary)).status_code == 201
    assert wait_for(lambda: bool(in_icloud(emu, uid)) and not run.state().outbox(("pending", "in_flight")), 5)
    return next(iter(in_icloud(emu, uid))).rsplit("/", 1)[-1]


def mirror_pass(run: Running) -> None:
    client = run.daemon.engine.client()
    try:
        run.daemon.engine.mirror_pass(client)
    finally:
        client.close()


def busy(run: Running) -> list[tuple[dt.datetime, dt.datetime]]:
    found = ask_daemon(run.url, *run.auth, DAY, DAY + dt.timedelta(days=1))
    assert found is not None
    return found


def local(run: Running, uid: str) -> str:
    answer = requests.get(run.href("appointments", f"{uid}.ics"), auth=run.auth, timeout=10)
    assert answer.status_code == 200
    return answer.text


def writes(emu: Emulator) -> int:
    return len([r for r in emu.requests if r.method in ("PUT", "DELETE")])


def report(run: Running) -> dict[str, Any]:
    state = run.state()
    try:
        return dict(status.gather(run.home, run.daemon.settings, state)["linked_changes"])
    finally:
        state.close()


def settled(run: Running) -> bool:
    """No push waiting (give the watcher and the push worker their turn first)."""
    run.daemon.push_wake.set()
    return not run.state().outbox(("pending", "in_flight"))


def test_moved_in_icloud_is_busy_at_its_new_time_within_one_pass(run: Running, emu: Emulator, mode: str) -> None:
    assert busy(run) == []
    name = push(run, emu, "move-1")
    emu.put_item(emu.calendar_id("Work"), name, at_two("move-1", "Call with Ada"))
    before = writes(emu)
    mirror_pass(run)
    assert TWO in busy(run)
    if mode == "two-way":
        assert "DTSTART:20290717T140000Z" in local(run, "move-1")
        assert TEN not in busy(run)
        assert report(run)["differing"] == []
    else:
        assert "DTSTART:20290717T100000Z" in local(run, "move-1")
        assert TEN in busy(run)  # both versions count while they differ
        assert [d["uid"] for d in report(run)["differing"]] == ["move-1"]
    assert wait_for(lambda: settled(run), 3)
    mirror_pass(run)  # a second pass changes nothing and pushes nothing back
    assert writes(emu) == before and len(in_icloud(emu, "move-1")) == 1
    assert "20290717T140000Z" in next(iter(in_icloud(emu, "move-1").values()))


def test_a_move_brought_in_counts_at_once_without_the_folder_watcher(tmp_path: Path, emu: Emulator) -> None:
    """Far past the busy index's horizon, busy time is read from rows that follow the index; the
    follower tells the index of what it wrote, so the move counts as the pass ends, not when the
    folder watcher happens to notice the file."""
    with daemon_running(home_for(tmp_path, emu, "two-way")) as run:
        name = push(run, emu, "fresh-1")
        assert TEN in busy(run)
        run.daemon.watcher.stop()
        emu.put_item(emu.calendar_id("Work"), name, at_two("fresh-1", "Call with Ada"))
        mirror_pass(run)
        assert TWO in busy(run) and TEN not in busy(run)


def test_retitled_in_icloud(run: Running, emu: Emulator, mode: str) -> None:
    name = push(run, emu, "title-1")
    emu.put_item(emu.calendar_id("Work"), name, at_ten("title-1", "Call with Ada (moved to Zoom)"))
    before = writes(emu)
    mirror_pass(run)
    if mode == "two-way":
        assert "SUMMARY:Call with Ada (moved to Zoom)" in local(run, "title-1")
    else:
        assert "SUMMARY:Call with Ada\r\n" in local(run, "title-1")
        assert report(run)["differing"][0]["icloud_text"].count("moved to Zoom") == 1
    assert wait_for(lambda: settled(run), 3)
    assert writes(emu) == before


def test_deleted_in_icloud(run: Running, emu: Emulator, mode: str) -> None:
    name = push(run, emu, "gone-1")
    emu.delete_item(emu.calendar_id("Work"), name)
    before = writes(emu)
    mirror_pass(run)
    assert wait_for(lambda: settled(run), 3)
    if mode == "two-way":
        text = local(run, "gone-1")
        assert "STATUS:CANCELLED" in text and "Call with Ada" in text  # kept, called off
        assert TEN not in busy(run)
        appt = run.state().appointment("gone-1")
        assert appt is not None and appt.remote_href is None
    else:
        assert "STATUS:CANCELLED" not in local(run, "gone-1") and TEN in busy(run)
        differing = report(run)["differing"]
        assert [(d["uid"], d["deleted_in_icloud"], d["icloud_text"]) for d in differing] == [("gone-1", True, None)]
    mirror_pass(run)
    assert writes(emu) == before and not in_icloud(emu, "gone-1")  # not recreated, not pushed back


def test_changed_on_both_sides_keeps_both_versions(run: Running, emu: Emulator, mode: str) -> None:
    """iCloud moves it while a local edit waits to be pushed (iCloud refuses it twice): the
    mirror pass counts both, the push wins in iCloud, and iCloud's version is kept."""
    name = push(run, emu, "both-1")
    moved = at_two("both-1", "Call with Ada")
    emu.put_item(emu.calendar_id("Work"), name, moved)
    emu.faults.fail(count=2, status=400, retry_after=None, method="PUT")  # retried, iCloud not held
    noted = at_ten("both-1", "Call with Ada", extra="DESCRIPTION:Bring the contract\r\n")
    assert run.put("both-1.ics", noted).status_code in (201, 204)
    assert wait_for(lambda: any(r.status == 400 for r in emu.requests), 3)
    mirror_pass(run)
    if run.state().outbox(("pending", "in_flight")):  # the push has not landed yet: both count
        assert TEN in busy(run) and TWO in busy(run)
        assert "Bring the contract" in local(run, "both-1")
    assert wait_for(lambda: any("Bring the contract" in b for b in in_icloud(emu, "both-1").values()), 6)
    assert wait_for(lambda: settled(run), 3)
    conflicts = report(run)["conflicts"]
    assert [c["uid"] for c in conflicts] == ["both-1"]
    assert "DTSTART:20290717T140000Z" in conflicts[0]["icloud_text"]
    assert "Bring the contract" in conflicts[0]["local_text"]
    assert "Bring the contract" in local(run, "both-1") and len(in_icloud(emu, "both-1")) == 1
    before = writes(emu)
    mirror_pass(run)  # our own push, seen again, is not a change
    assert wait_for(lambda: settled(run), 3)
    assert writes(emu) == before and report(run)["differing"] == []
    assert TEN in busy(run) and TWO not in busy(run)


def test_one_way_local_edit_overrides_icloud_and_keeps_its_version(tmp_path: Path, emu: Emulator) -> None:
    with daemon_running(home_for(tmp_path, emu, "one-way")) as run:
        name = push(run, emu, "ow-1")
        emu.put_item(emu.calendar_id("Work"), name, at_two("ow-1", "Call"))
        mirror_pass(run)
        assert TEN in busy(run) and TWO in busy(run)
        assert run.put("ow-1.ics", at_ten("ow-1", "Call", extra="DESCRIPTION:note\r\n")).status_code in (201, 204)
        assert wait_for(lambda: any("note" in b for b in in_icloud(emu, "ow-1").values()), 5)
        assert wait_for(lambda: settled(run), 3)
        assert report(run)["differing"] == []
        assert "20290717T140000Z" in report(run)["conflicts"][0]["icloud_text"]
        assert TEN in busy(run) and TWO not in busy(run)
        # Looked at: `status` names it and how to forget it; forgetting keeps the appointment as it is.
        cli = Cli(run.home.data_dir)
        assert "Version conflict" in cli("status").stdout and "--clear-version-conflicts" in cli("status").stdout
        cleared = cli("status", "--clear-version-conflicts", "--json")
        assert json.loads(cleared.stdout) == {"cleared_version_conflicts": 1}
        assert report(run)["conflicts"] == [] and "Version conflict" not in cli("status").stdout
        assert "note" in local(run, "ow-1") and len(in_icloud(emu, "ow-1")) == 1


@pytest.mark.parametrize("where", ["before the local write", "after the local write"])
def test_crash_while_bringing_a_change_in(tmp_path: Path, emu: Emulator, where: str) -> None:
    """The daemon dies between seeing iCloud's change and writing appointments/, or between
    that write and recording it; after a restart the change is there once and never pushed back."""
    home = home_for(tmp_path, emu, "two-way")
    run = start_daemon(home)
    name = push(run, emu, "crash-1")
    emu.put_item(emu.calendar_id("Work"), name, at_two("crash-1", "Moved"))
    engine = run.daemon.engine
    before = writes(emu)

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    if where == "before the local write":
        engine.store.write_appointment = crash  # type: ignore[method-assign]
    else:
        engine.state.agree = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        mirror_pass(run)
    run.stop()
    with daemon_running(home) as again:
        assert "DTSTART:20290717T140000Z" in local(again, "crash-1")
        assert wait_for(lambda: settled(again), 3)
        assert again.state().remote_versions() == []
        mirror_pass(again)
        assert wait_for(lambda: settled(again), 3)
        assert TWO in busy(again) and TEN not in busy(again)
    assert writes(emu) == before and len(in_icloud(emu, "crash-1")) == 1


def test_a_linked_calendar_that_is_not_mirrored_is_followed_too(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path / "calmirror", emu, conflicts=("Home",))  # linked Work, not mirrored
    with daemon_running(home) as run:
        name = push(run, emu, "nm-1")
        emu.put_item(emu.calendar_id("Work"), name, at_two("nm-1", "Call"))
        before = writes(emu)
        mirror_pass(run)
        assert "DTSTART:20290717T140000Z" in local(run, "nm-1") and TWO in busy(run)
        assert wait_for(lambda: settled(run), 3)
        mirror_pass(run)
        assert writes(emu) == before
