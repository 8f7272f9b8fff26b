"""Heavy reads compute a few at a time, in order of arrival; writes and cheap reads skip the line.

Against a real local server and store: the free-busy callable of the first REPORT is held
open, a second REPORT must wait at the gate (not compute beside it), while a PUT, a GET and
a PROPFIND of one item are answered at once. The gate itself is driven by real threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from calmirror.availability.guard import make_freebusy
from calmirror.availability.sources import BusySources
from calmirror.config import Settings
from calmirror.local import LocalServer, LocalStore, layout
from calmirror.local.admission import HeavyReads, is_heavy, stepping_aside
from calmirror.state import State
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event
from tests.helpers import wait_for

AUTH = (USER, PASSWORD)
FREEBUSY = (
    '<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="20270104T000000Z" end="20270111T000000Z"/></C:free-busy-query>'
)
PROPFIND = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'


class HeldFreeBusy:
    """A free-busy callable that counts how many run at once and holds the first open."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.calls = 0

    def __call__(self, path: str, start: datetime, end: datetime) -> str:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            self.entered.set()
            assert self.release.wait(30)
            return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def one_place(tmp_path: Path) -> Iterator[tuple[LocalServer, HeldFreeBusy]]:
    held = HeldFreeBusy()
    store = LocalStore(tmp_path / "store", USER)
    store.ensure_base()
    store.ensure_mirror("work", "Work", None)
    with LocalServer(
        store.store_dir, port=0, username=USER, password=PASSWORD, freebusy=held, heavy_reads=HeavyReads(1)
    ) as server:
        yield server, held
        held.release.set()


def test_a_second_heavy_read_waits_while_writes_and_item_reads_go_through(
    one_place: tuple[LocalServer, HeldFreeBusy],
) -> None:
    server, held = one_place
    mirror = f"{server.url}{USER}/{layout.mirror_name('work')}/"
    codes: list[int] = []

    def freebusy() -> None:
        answer = requests.request("REPORT", mirror, data=FREEBUSY, auth=AUTH, headers={"Depth": "1"}, timeout=60)
        codes.append(answer.status_code)

    first = threading.Thread(target=freebusy, daemon=True)
    first.start()
    assert held.entered.wait(10)
    second = threading.Thread(target=freebusy, daemon=True)
    second.start()
    second.join(0.5)
    assert second.is_alive() and held.calls == 1  # at the gate, not computing beside the first

    item = f"{server.url}{USER}/{layout.APPOINTMENTS}/a1.ics"
    data = event("a1", start="20261202T100000Z", end="20261202T110000Z")
    headers = {"Content-Type": "text/calendar"}
    assert requests.put(item, data=data, headers=headers, auth=AUTH, timeout=10).status_code == 201
    assert requests.get(item, auth=AUTH, timeout=10).status_code == 200
    one = requests.request("PROPFIND", item, data=PROPFIND, headers={"Depth": "0"}, auth=AUTH, timeout=10)
    assert one.status_code == 207

    held.release.set()
    first.join(30)
    second.join(30)
    assert codes == [200, 200]
    assert held.calls == 2 and held.most == 1


def test_places_are_handed_out_in_order_of_arrival() -> None:
    gate = HeavyReads(1)
    order: list[int] = []
    holder_in, holder_out = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.place():
            holder_in.set()
            assert holder_out.wait(10)

    def wait_then_enter(n: int) -> None:
        with gate.place():
            order.append(n)

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    assert holder_in.wait(10)
    for n in range(5):
        thread = threading.Thread(target=wait_then_enter, args=(n,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while gate.queued < n + 1:  # each one queued before the next arrives
            assert time.monotonic() < deadline
            time.sleep(0.001)
    holder_out.set()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4]
    assert gate.busy == 0 and gate.queued == 0 and gate.waited == 5


def test_at_most_the_places_compute_at_once_and_everyone_gets_through() -> None:
    gate = HeavyReads(2)
    lock = threading.Lock()
    inside = {"now": 0, "most": 0, "done": 0}

    def read() -> None:
        for _ in range(20):
            with gate.place():
                with lock:
                    inside["now"] += 1
                    inside["most"] = max(inside["most"], inside["now"])
                time.sleep(0.0005)
                with lock:
                    inside["now"] -= 1
                    inside["done"] += 1

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert inside == {"now": 0, "most": 2, "done": 160}


def test_which_requests_are_heavy() -> None:
    assert is_heavy("REPORT", "")
    assert is_heavy("PROPFIND", "1") and is_heavy("PROPFIND", "infinity") and is_heavy("PROPFIND", "")
    assert not is_heavy("PROPFIND", "0")
    assert not any(is_heavy(method, "1") for method in ("GET", "PUT", "DELETE", "HEAD", "PROPPATCH", "MOVE"))


def test_a_freebusy_report_waiting_for_the_busy_index_lets_other_heavy_reads_through(tmp_path: Path) -> None:
    """A free-busy REPORT that waits for the busy index (held here as a build holds it) computes
    nothing, so it gives its place up: with one place, a PROPFIND of a collection's members is
    answered meanwhile, and the REPORT is answered once the index is free."""
    store = LocalStore(tmp_path / "store", USER)
    store.ensure_base()
    store.ensure_mirror("work", "Work", None)
    state = State(tmp_path / "state.db")
    busy = BusySources(store, state, Settings(file=tmp_path / "config.toml"))
    busy.upkeep.ensure()
    codes: list[int] = []
    gate = HeavyReads(1)
    with LocalServer(
        store.store_dir, port=0, username=USER, password=PASSWORD, freebusy=make_freebusy(busy), heavy_reads=gate
    ) as server:
        mirror = f"{server.url}{USER}/{layout.mirror_name('work')}/"

        def freebusy() -> None:
            answer = requests.request("REPORT", mirror, data=FREEBUSY, auth=AUTH, headers={"Depth": "1"}, timeout=60)
            codes.append(answer.status_code)

        with busy.upkeep.lock:  # the index being built
            waiting = threading.Thread(target=freebusy, daemon=True)
            waiting.start()
            assert wait_for(lambda: gate.asides == 1, 10)  # it reached the index's lock
            listing = requests.request("PROPFIND", mirror, data=PROPFIND, headers={"Depth": "1"}, auth=AUTH, timeout=10)
            assert listing.status_code == 207
            assert waiting.is_alive() and not codes
        waiting.join(30)
    state.close()
    assert codes == [200]


def test_a_read_that_stepped_aside_takes_the_next_place_before_later_arrivals() -> None:
    gate = HeavyReads(1)
    order: list[str] = []
    aside, back_in, b_in, b_out = threading.Event(), threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with gate.place():
            with stepping_aside():
                aside.set()
                assert back_in.wait(10)
            order.append("a")

    def b() -> None:
        with gate.place():
            b_in.set()
            assert b_out.wait(10)
            order.append("b")

    def c() -> None:
        with gate.place():
            order.append("c")

    first = threading.Thread(target=a)
    first.start()
    assert aside.wait(10)
    second = threading.Thread(target=b)
    second.start()
    assert b_in.wait(10)  # A's place went to B
    back_in.set()  # A's wait is over: it queues ahead of everyone
    assert wait_for(lambda: gate.queued == 1, 10)
    third = threading.Thread(target=c)
    third.start()
    assert wait_for(lambda: gate.queued == 2, 10)
    b_out.set()
    for thread in (first, second, third):
        thread.join(10)
    assert order == ["b", "a", "c"]
    assert gate.busy == 0 and gate.queued == 0 and gate.asides == 1
