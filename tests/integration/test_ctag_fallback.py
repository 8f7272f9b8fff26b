"""A CalDAV server without sync-collection (the emulator with it switched off) is followed by
its ctag and ETags, with the request budget from the server's own log: idle is one Depth-0
PROPFIND; a change costs the ctag, one Depth-1 ETag listing and a multiget of what changed."""

from __future__ import annotations

from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.remote.changes import CTAG_TOKEN
from tests.helpers import connected_home, engine_for, event


def test_without_sync_collection_idle_is_one_propfind_and_a_change_fetches_only_it(
    tmp_path: Path, emu: Emulator
) -> None:
    emu.set_sync_collection(False)
    work = emu.calendar_id("Work")
    engine = engine_for(connected_home(tmp_path / "home", emu, linked=None, conflicts=("Work",)))
    try:
        with engine.client() as client:
            emu.clear_requests()
            (first,) = engine.mirror_pass(client)
            assert first.error is None and first.added == len(emu.items(work)) > 2
            kinds = [(r.method, r.status) for r in emu.requests]
            assert kinds[:3] == [("REPORT", 403), ("PROPFIND", 207), ("PROPFIND", 207)]  # detected, then listed
            assert kinds[3:] and all(k == ("REPORT", 207) for k in kinds[3:])  # multigets of the bodies
            row = engine.state.mirror(work)
            assert row is not None and (row.sync_token or "").startswith(CTAG_TOKEN)

            emu.clear_requests()
            (idle,) = engine.mirror_pass(client)
            assert idle.error is None and (idle.added, idle.updated, idle.deleted) == (0, 0, 0)
            assert [(r.method, r.status) for r in emu.requests] == [("PROPFIND", 207)]

            names = sorted(emu.items(work))
            emu.delete_item(work, names[0].rsplit("/", 1)[-1])
            emu.put_item(work, "fallback-new.ics", event("fallback-new", "Added without sync-collection"))
            emu.clear_requests()
            (changed,) = engine.mirror_pass(client)
            assert changed.error is None and (changed.added, changed.deleted) == (1, 1)
            assert [(r.method, r.status) for r in emu.requests] == [
                ("PROPFIND", 207),  # the ctag moved
                ("PROPFIND", 207),  # every ETag
                ("REPORT", 207),  # one multiget: the item no longer listed is really gone (a 404)
                ("REPORT", 207),  # one multiget: only the new item
            ]
            uids = {entry.uid for entry in engine.state.mirror_items(work).values()}
            assert "fallback-new" in uids and len(uids) == len(emu.items(work))
    finally:
        engine.connections.close()
        engine.state.close()
