"""The appointments watcher against real client writes through Radicale."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from calmirror.local import AppointmentWatcher, LocalServer, LocalStore, StoreError
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER

EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror tests//EN\r\nBEGIN:VEVENT\r\n"
    "UID:watched\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250105T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:Watched\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= count, timeout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD) as srv:
        yield srv


@pytest.fixture
def folder(server: LocalServer) -> Path:
    return LocalStore(server.store_dir, USER).collection_dir("appointments")


@pytest.fixture
def calls(folder: Path) -> Iterator[Calls]:
    recorded = Calls()
    watcher = AppointmentWatcher(folder, on_change=recorded)
    watcher.start()
    yield recorded
    watcher.stop()


def test_a_client_put_is_seen_within_a_second(server: LocalServer, calls: Calls) -> None:
    target = server.url + f"{USER}/appointments/w.ics"
    began = time.perf_counter()
    answer = requests.put(target, data=EVENT.encode(), auth=(USER, PASSWORD), timeout=10)
    assert answer.status_code == 201
    assert calls.wait_for(1, timeout=1.0)
    print(f"PUT to callback: {(time.perf_counter() - began) * 1000:.0f} ms")
    time.sleep(0.2)
    assert calls.count == 1  # one PUT, one call


def test_delete_and_move_are_seen(server: LocalServer, calls: Calls) -> None:
    base = server.url + f"{USER}/appointments/"
    with requests.Session() as http:
        http.auth = (USER, PASSWORD)
        assert http.put(base + "a.ics", data=EVENT.encode()).status_code == 201
        assert calls.wait_for(1, timeout=1.0)
        time.sleep(0.1)
        moved = http.request("MOVE", base + "a.ics", headers={"Destination": base + "b.ics"})
        assert moved.status_code == 201
        assert calls.wait_for(2, timeout=1.0)
        time.sleep(0.1)
        assert http.delete(base + "b.ics").status_code in (200, 204)
        assert calls.wait_for(3, timeout=1.0)


def test_radicale_scratch_files_alone_are_ignored(folder: Path, calls: Calls) -> None:
    scratch = folder / ".Radicale.tmp-abc123"
    scratch.mkdir()
    (scratch / "x.ics").write_text(EVENT)
    (scratch / "x.ics").unlink()
    scratch.rmdir()
    (folder / ".Radicale.props").write_text((folder / ".Radicale.props").read_text())
    (folder / ".Radicale.cache").mkdir(exist_ok=True)
    (folder / ".Radicale.lock").write_text("")
    (folder / ".Radicale.lock").unlink()
    assert not calls.wait_for(1, timeout=0.5)


def test_a_burst_becomes_few_calls(folder: Path, calls: Calls) -> None:
    for i in range(50):
        (folder / f"burst-{i}.ics").write_text(EVENT)
    assert calls.wait_for(1, timeout=1.0)
    time.sleep(0.3)
    assert calls.count <= 5


def test_stop_ends_the_callbacks(folder: Path) -> None:
    recorded = Calls()
    watcher = AppointmentWatcher(folder, on_change=recorded)
    watcher.start()
    watcher.stop()
    (folder / "late.ics").write_text(EVENT)
    assert not recorded.wait_for(1, timeout=0.3)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        AppointmentWatcher(tmp_path / "nowhere", on_change=lambda: None).start()
