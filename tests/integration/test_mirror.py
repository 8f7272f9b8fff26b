"""Mirroring against the emulator: exact copies, request budgets, deletions, faults, rails."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import icalendar
import pytest

from calmirror import config_edit
from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.sync_report import SyncReport
from calmirror.transform import MARKER
from tests.helpers import connected_home, engine_for, event

REMOTE_WRITES = {"PUT", "DELETE", "PROPPATCH", "MKCOL", "MKCALENDAR", "MOVE", "COPY", "POST"}


def sync(engine: Engine, **kw: Any) -> dict[str, SyncReport]:
    client = engine.client()
    try:
        return {r.name: r for r in engine.mirror_pass(client, **kw)}
    finally:
        client.close()


def requests_to(emu: Emulator, cal_id: str) -> list[str]:
    return [r.method for r in emu.requests if f"/calendars/{cal_id}/" in r.path]


def local_copies(engine: Engine, slug: str) -> dict[str, str]:
    return engine.store.items(f"icloud-{slug}")


def test_initial_sync_makes_exact_marked_copies_within_the_request_budget(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work", "Home", "Family"))
    engine = engine_for(home)
    emu.clear_requests()
    reports = sync(engine)
    assert (reports["Work"].added, reports["Home"].added, reports["Family"].added) == (16, 9, 3)
    for name, n in (("Work", 16), ("Home", 9), ("Family", 3)):
        assert len(requests_to(emu, emu.calendar_id(name))) <= math.ceil(n / 100) + 3
    assert not REMOTE_WRITES & {r.method for r in emu.requests}
    remote = emu.items(emu.calendar_id("Work"))
    local = local_copies(engine, "work")
    assert len(local) == len(remote) == 16
    remote_by_uid = {icalendar.Calendar.from_ical(t).walk("VEVENT")[0]["UID"]: t for t in remote.values()}
    for text in local.values():
        cal = icalendar.Calendar.from_ical(text)
        events = cal.walk("VEVENT")
        assert all(str(e[MARKER]) == emu.calendar_id("Work") for e in events)
        original = icalendar.Calendar.from_ical(remote_by_uid[events[0]["UID"]])
        for ours, theirs in zip(events, original.walk("VEVENT"), strict=True):
            assert {k for k in ours if k != MARKER} == set(theirs)  # every property kept
        assert len(cal.walk("VTIMEZONE")) == len(original.walk("VTIMEZONE"))


def test_idle_sync_is_one_request_and_one_change_at_most_two(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    engine = engine_for(home)
    sync(engine)
    work = emu.calendar_id("Work")
    emu.clear_requests()
    assert sync(engine)["Work"].added == 0
    assert requests_to(emu, work) == ["REPORT"]
    emu.put_item(work, "new-one.ics", event("new-one", "Added in iCloud"))
    emu.clear_requests()
    report = sync(engine)["Work"]
    assert report.added == 1 and len(requests_to(emu, work)) <= 2


def test_remote_create_update_delete_are_mirrored(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    engine = engine_for(home)
    work = emu.calendar_id("Work")
    emu.put_item(work, "x.ics", event("x", "Version one"))
    sync(engine)
    emu.put_item(work, "x.ics", event("x", "Version two"))
    name = next(iter(emu.items(work))).rsplit("/", 1)[-1]
    emu.delete_item(work, name if name != "x.ics" else list(emu.items(work))[1].rsplit("/", 1)[-1])
    report = sync(engine)["Work"]
    assert (report.updated, report.deleted) == (1, 1)
    local = local_copies(engine, "work")
    assert any("Version two" in t for t in local.values())
    assert {t.split("UID:")[1].split("\r\n")[0] for t in local.values()} == {
        t.split("UID:")[1].split("\r\n")[0] for t in emu.items(work).values()
    }


@pytest.mark.parametrize("mode", ["403", "full"])
def test_invalid_token_leads_to_a_clean_full_resync(tmp_path: Path, emu: Emulator, mode: str) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    engine = engine_for(home)
    work = emu.calendar_id("Work")
    sync(engine)
    emu.invalidate_sync_tokens(mode=mode)
    emu.put_item(work, "late.ics", event("late", "After the reset"))
    victim = sorted(emu.items(work))[0].rsplit("/", 1)[-1]
    emu.delete_item(work, victim)
    report = sync(engine)["Work"]
    assert report.error is None and (report.full or mode == "full")
    assert len(local_copies(engine, "work")) == len(emu.items(work)) == 16


def test_503_in_the_middle_of_a_multiget_then_recovery(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",), extra_config="\n[sync]\nbatch = 5\n")
    engine = engine_for(home)
    client = engine.client()
    cal = next(c for c in engine.state.calendars() if c.name == "Work")

    def arm(name: str, done: int, total: int) -> None:
        if done == 5:
            emu.faults.fail(count=1, status=503, retry_after=2, method="REPORT")

    with pytest.raises(Exception) as caught:
        engine.mirror.sync_calendar(client, cal, progress=arm)
    assert getattr(caught.value, "retry_after", None) == 2
    # The first batch landed and the token was not saved. The next multiget is sent while a
    # batch is worked on (`prefetch`), and the writer may have begun the batch behind the
    # first: under load the fault can meet the third or fourth request instead, so one to
    # three whole batches landed.
    partial = len(local_copies(engine, "work"))
    assert partial in (5, 10, 15)
    emu.clear_requests()
    report = engine.mirror.sync_calendar(client, cal)
    client.close()
    assert report.added == 16 - partial and len(local_copies(engine, "work")) == 16
    assert len(requests_to(emu, emu.calendar_id("Work"))) == 1 + math.ceil((16 - partial) / 5)


def test_pass_after_503_holds_every_request_until_retry_after(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work", "Home"))
    engine = engine_for(home)
    emu.faults.fail(count=1, status=503, retry_after=120)
    reports = sync(engine)
    assert "503" in (reports["Work"].error or "") or reports["Work"].error
    emu.clear_requests()
    again = sync(engine)
    assert emu.requests == []  # nothing sent before Retry-After elapses
    assert all("wait" in (r.error or "") for r in again.values())


def test_an_emptied_calendar_keeps_its_mirror_until_accepted(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Home",))
    engine = engine_for(home)
    home_id = emu.calendar_id("Home")
    sync(engine)
    for href in list(emu.items(home_id)):
        emu.delete_item(home_id, href.rsplit("/", 1)[-1])
    report = sync(engine)["Home"]
    assert report.held_empty and len(local_copies(engine, "home")) == 9
    assert engine.state.mirror(home_id).held_empty  # type: ignore[union-attr]
    report = sync(engine, accept_empty=frozenset({home_id}))["Home"]
    assert report.deleted == 9 and local_copies(engine, "home") == {}


def test_busy_privacy_strips_details_on_create_and_update(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    work = emu.calendar_id("Work")
    config_edit.set_calendar_details(home.config_file, work, "busy")
    engine = engine_for(home)
    emu.put_item(work, "p.ics", event("p", "Secret merger", extra="DESCRIPTION:Top secret\r\nLOCATION:HQ\r\n"))
    sync(engine)
    emu.put_item(work, "p.ics", event("p", "Secret merger v2", extra="DESCRIPTION:Still secret\r\n"))
    sync(engine)
    local = "".join(local_copies(engine, "work").values())
    for secret in ("Secret", "HQ", "ATTENDEE", "DESCRIPTION", "VALARM", "X-APPLE-STRUCTURED-LOCATION"):
        assert secret not in local
    assert local.count("SUMMARY:Busy") >= 17


def test_bad_remote_items_are_skipped_with_a_reason_and_the_rest_syncs(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    engine = engine_for(home)
    work = emu.calendar_id("Work")
    todo = event("t", "A task").replace("VEVENT", "VTODO")
    emu.bulk_load(work, [("wrong-type.ics", todo)])  # iCloud-side data of the wrong component type
    report = sync(engine)["Work"]
    assert report.added == 16 and report.skipped == 1
    assert "no VEVENT" in next(iter(report.skipped_reasons.values()))
    assert engine.state.mirror(work).skipped == 1  # type: ignore[union-attr]


def test_removing_a_conflict_calendar_removes_its_mirror(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work", "Home"))
    engine = engine_for(home)
    sync(engine)
    assert set(engine.store.list_mirrors()) == {"work", "home"}
    engine.reload(config_edit.set_conflicts(home.config_file, [emu.calendar_id("Work")]))
    sync(engine)
    assert engine.store.list_mirrors() == ["work"]
    assert engine.state.mirror("home") is None


def test_mirror_collection_has_display_name_and_colour(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    engine = engine_for(home)
    sync(engine)
    from calmirror.credentials import local_account
    from calmirror.local.server import LocalServer

    acct = local_account(home)
    server = LocalServer(home.store_dir, port=0, username=acct.username, password=acct.password)
    url = server.start()
    try:
        import requests

        answer = requests.request(
            "PROPFIND",
            f"{url}{acct.username}/icloud-work/",
            auth=(acct.username, acct.password),
            headers={"Depth": "0"},
            timeout=10,
            data='<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/">'
            "<D:prop><D:displayname/><A:calendar-color/></D:prop></D:propfind>",
        )
    finally:
        server.stop()
    work = next(c for c in engine.state.calendars() if c.name == "Work")
    assert "iCloud · Work" in answer.text and "iCloud · iCloud" not in answer.text
    assert work.color and work.color in answer.text


def test_after_a_crash_stray_and_lost_local_copies_are_put_right(tmp_path: Path, emu: Emulator) -> None:
    """A crash between writing a batch and recording it leaves files the map does not know; when
    iCloud deletes those events no pass would remove them. A restarted process compares the
    mirror with its map once: strays go, lost copies are fetched again."""
    home = connected_home(tmp_path, emu, conflicts=("Work",))
    work = emu.calendar_id("Work")
    sync(engine_for(home))
    crashed = engine_for(home)
    # What a crash leaves: a pass marks the mirror unclean before its first write, then a copy
    # written but never recorded (its event since deleted in iCloud), and a recorded copy whose
    # file is gone.
    crashed.state.set_mirror_clean(work, False)
    assert crashed.store.apply_mirror("work", [("stray.ics", event("stray-uid"))], []) == []
    recorded = sorted(crashed.state.mirror_items(work).values(), key=lambda e: e.href)[0]
    assert crashed.store.apply_mirror("work", [], [recorded.local_href]) == []
    crashed.state.close()

    restarted = engine_for(home)
    emu.clear_requests()
    sync(restarted)
    local = {text.replace(f"{MARKER}:{work}\r\n", "") for text in local_copies(restarted, "work").values()}
    assert local == set(emu.items(work).values())
    (warning,) = [e.message for e in restarted.state.events() if "did not match its record" in e.message]
    # (the same pass runs in `calmirror sync`, where no restart applies: it names what can cause it)
    assert "an earlier pass was interrupted" in warning and "restart" not in warning, warning
    emu.clear_requests()
    sync(restarted)
    assert requests_to(emu, work) == ["REPORT"]  # converged: the next pass is idle again


def test_a_new_process_changes_one_event_without_reading_the_whole_mirror(
    tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a one-change pass of a fresh process costs must follow the change, not the mirror:
    no listing of the mirror's folder, no item read back from the store, no full map load."""
    from radicale.storage import multifilesystem

    from calmirror.local.store import LocalStore
    from calmirror.state import State

    home = connected_home(tmp_path, emu, conflicts=("Work",))
    work = emu.calendar_id("Work")
    first = engine_for(home)
    sync(first)
    first.state.close()
    name, text = next(iter(sorted(emu.items(work).items())))
    emu.put_item(work, name.rsplit("/", 1)[-1], text.replace("SUMMARY:", "SUMMARY:Changed ", 1))

    def whole(*_: object) -> None:
        raise AssertionError("read the whole mirror")

    emulator_reads = multifilesystem.Collection.get_all

    def get_all(self: multifilesystem.Collection) -> Any:
        if "icloud-" in self.path:  # the mirror; the emulator in this process is Radicale too
            whole()
        return emulator_reads(self)

    monkeypatch.setattr(multifilesystem.Collection, "get_all", get_all)
    monkeypatch.setattr(LocalStore, "mirror_item_names", whole)
    monkeypatch.setattr(State, "mirror_items", whole)
    fresh = engine_for(home)
    report = sync(fresh)["Work"]
    assert (report.updated, report.added, report.deleted, report.error) == (1, 0, 0, None)
    monkeypatch.undo()
    assert any("SUMMARY:Changed " in copy for copy in local_copies(fresh, "work").values())


def test_a_pass_cut_short_leaves_the_mirror_to_be_checked_by_the_next_process(
    tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror is marked unclean before a pass writes and clean once it finished, so only a
    process that finds it unclean compares the folder with the map."""
    from calmirror.local.errors import StoreError
    from calmirror.local.store import LocalStore

    home = connected_home(tmp_path, emu, conflicts=("Work",))
    work = emu.calendar_id("Work")
    engine = engine_for(home)
    sync(engine)
    assert engine.state.mirror_clean(work)
    emu.put_item(work, "new-one.ics", event("new-one"))

    def disk_full(*_: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(LocalStore, "write_checked", disk_full)
    with pytest.raises(StoreError):
        sync(engine)
    monkeypatch.undo()
    assert not engine.state.mirror_clean(work)
    report = sync(engine_for(home))["Work"]
    assert report.added == 1 and not report.error and engine.state.mirror_clean(work)


def _busy_entries(engine: Engine) -> dict[str, dict[str, str]]:
    return {source: engine.state.busy_digests(source) for source in sorted(engine.state.busy_sources())}


def test_busy_entries_a_check_worker_computes_are_those_the_pass_would(
    tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the busy index built, a pass whose batches worker processes check has them compute
    the busy-index entries too; the index then holds what a pass checking in-process writes."""
    from calmirror.availability.busy_upkeep import BusyUpkeep
    from calmirror.availability.spans import IndexedItem
    from calmirror.local import check_pool

    made_here = [0]  # entries made in this process (one unpickled from a worker is not __init__ed)
    real_init = IndexedItem.__init__

    def counted(self: IndexedItem, *args: Any, **kwargs: Any) -> None:
        made_here[0] += 1
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(IndexedItem, "__init__", counted)
    entries: dict[bool, dict[str, dict[str, str]]] = {}
    made: dict[bool, int] = {}
    for pooled in (False, True):
        monkeypatch.setattr(check_pool, "WORTH_A_POOL", 1 if pooled else 10**9)
        engine = engine_for(connected_home(tmp_path / str(pooled), emu, conflicts=("Work", "Home")))
        BusyUpkeep(engine.store, engine.state, engine.settings).ensure()  # as the daemon does before its first pass
        made_here[0] = 0
        assert sync(engine)["Work"].added == 16
        made[pooled] = made_here[0]
        entries[pooled] = _busy_entries(engine)
    assert entries[True] == entries[False] and sum(len(e) for e in entries[False].values()) >= 25
    assert made[False] >= 25 and made[True] == 0  # none computed in the syncing process
