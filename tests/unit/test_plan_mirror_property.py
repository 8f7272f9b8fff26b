"""Property: whatever iCloud does between syncs, and wherever a sync is cut short, the mirror
converges to iCloud once a sync completes; an iCloud calendar that suddenly lists nothing does
not wipe a mirror unless the user said so.

The real `Mirror` (planner, executor, state, local store) against the emulator: another device
puts, breaks and deletes events in iCloud, iCloud forgets our sync token, a 503 cuts a sync
short before any of its multigets, and the process restarts (every in-memory object dropped, the
state and the store reopened from disk). What iCloud holds is read back with `ICloudClient`,
whose behaviour the remote contract pins down.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.config import ICloudSettings, Settings, SyncSettings
from calmirror.emulator import Emulator
from calmirror.errors import Unavailable
from calmirror.local import LocalStore, mirror_name
from calmirror.mirror import Mirror
from calmirror.model import CalendarRow
from calmirror.remote import ICloudClient
from calmirror.state import State
from calmirror.transform import local_name, mark_mirrored
from tests.helpers import APP_PASSWORD, APPLE_ID

BATCH = 2  # small multigets, so a sync has several places to be cut short
ITEMS = 4  # few hrefs, so the same item is put, broken and deleted often

Op = tuple[str, int | None]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, ITEMS - 1)),
        st.tuples(st.just("bad"), st.integers(0, ITEMS - 1)),
        st.tuples(st.just("delete"), st.integers(0, ITEMS - 1)),
        st.tuples(st.just("sync"), st.one_of(st.none(), st.integers(0, 3))),
        st.tuples(st.just("empty"), st.none()),
        st.tuples(st.just("invalidate"), st.none()),
        st.tuples(st.just("restart"), st.none()),
    ),
    max_size=25,
)

PROFILE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body(uid: str, version: int, bad: bool) -> str:
    """An event, or (bad) a to-do under the same UID: no VEVENT, so never mirrored."""
    kind = "VTODO" if bad else "VEVENT"
    times = "" if bad else f"DTSTART:20261201T{version % 24:02d}0000Z\r\nDTEND:20261201T{version % 24:02d}3000Z\r\n"
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:{kind}\r\nUID:{uid}\r\n"
        f"DTSTAMP:20261101T000000Z\r\n{times}SUMMARY:v{version}\r\nEND:{kind}\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emulator:
        yield emulator


class World:
    """One iCloud calendar and one daemon home mirroring it."""

    def __init__(self, emu: Emulator, root: Path, *, accept_empty: bool) -> None:
        self.emu, self.root, self.accept_empty = emu, root, accept_empty
        self.cal_id = emu.create_calendar(f"Work {root.name}")
        self.cal = CalendarRow(self.cal_id, emu.calendar_url(self.cal_id), "Work", None, ("VEVENT",), True)
        self.settings = Settings(
            file=root / "config.toml", icloud=ICloudSettings(conflicts=(self.cal_id,)), sync=SyncSettings(batch=BATCH)
        )
        self.version = 0
        self.held = False
        self._open()

    def _open(self) -> None:
        self.state = State(self.root / "state.db")
        self.store = LocalStore(self.root / "store", "calmirror")
        self.store.ensure_base()
        self.mirror = Mirror(self.state, self.store, self.settings)
        self.client = ICloudClient(self.emu.url, APPLE_ID, APP_PASSWORD)

    def close(self) -> None:
        self.client.close()
        self.state.close()

    def restart(self) -> None:
        self.close()
        self._open()

    # --- another device, and iCloud itself --------------------------------------------------

    def put(self, n: int, bad: bool) -> None:
        self.version += 1
        self.emu.put_item(self.cal_id, f"item{n}.ics", body(f"uid-{n}", self.version, bad))

    def delete(self, n: int) -> None:
        if any(path.endswith(f"/item{n}.ics") for path in self.emu.items(self.cal_id)):
            self.emu.delete_item(self.cal_id, f"item{n}.ics")

    # --- the daemon ---------------------------------------------------------------------------

    def sync(self, cut_at_batch: int | None) -> None:
        """One pass; with `cut_at_batch`, iCloud answers 503 to that batch's multiget."""

        def progress(_name: str, start: int, total: int) -> None:
            if cut_at_batch is not None and start == cut_at_batch * BATCH and start < total:
                self.emu.faults.fail(status=503, retry_after=None, method="REPORT", path_contains=self.cal_id)

        try:
            report = self.mirror.sync_calendar(self.client, self.cal, accept_empty=self.accept_empty, progress=progress)
        except Unavailable:
            return
        finally:
            self.emu.faults.clear()
        self.held = report.held_empty

    def local(self) -> dict[str, str]:
        row = self.state.mirror(self.cal_id)
        if row is None:  # never synced: no mirror yet
            return {}
        return self.store.items(mirror_name(str(row.slug)))

    def run(self, history: list[Op]) -> None:
        for op, arg in history:
            if op in ("put", "bad"):
                self.put(arg or 0, bad=op == "bad")
            elif op == "delete":
                self.delete(arg or 0)
            elif op == "empty":
                for n in range(ITEMS):
                    self.delete(n)
            elif op == "sync":
                self.sync(arg)
            elif op == "invalidate":
                self.emu.invalidate_sync_tokens("403")
            else:
                self.restart()

    # --- what iCloud holds, read through the contract-tested client ----------------------------

    def remote(self) -> dict[str, tuple[str, str]]:
        listing = self.client.sync(self.cal.url, None)
        items, _missing = self.client.fetch(self.cal.url, list(listing.changed))
        return {item.href: (item.etag, item.body) for item in items}

    def expected_local(self) -> dict[str, str]:
        return {
            local_name(href): mark_mirrored(text, self.cal_id)
            for href, (_, text) in self.remote().items()
            if "BEGIN:VEVENT" in text
        }


@contextmanager
def world(emu: Emulator, accept_empty: bool) -> Iterator[World]:
    with tempfile.TemporaryDirectory() as folder:
        created = World(emu, Path(folder), accept_empty=accept_empty)
        try:
            yield created
        finally:
            created.close()


@PROFILE
@given(history=ops)
def test_mirror_converges_to_icloud(emu: Emulator, history: list[Op]) -> None:
    with world(emu, accept_empty=True) as w:
        w.run(history)
        w.sync(None)
        assert w.local() == w.expected_local()
        remote = w.remote()
        events = {href: etag for href, (etag, text) in remote.items() if "BEGIN:VEVENT" in text}
        assert {href: entry.etag for href, entry in w.state.mirror_items(w.cal_id).items()} == events


@PROFILE
@given(history=ops)
def test_an_emptied_calendar_never_wipes_a_mirror_without_consent(emu: Emulator, history: list[Op]) -> None:
    with world(emu, accept_empty=False) as w:
        w.run(history)
        before = w.local()
        w.sync(None)
        if before and not w.remote():  # the calendar lists nothing at all: keep the mirror
            assert w.held
            assert w.local() == before
        else:
            assert w.local() == w.expected_local()
