"""Lanes: a write that touches one collection waits only for writes to that collection.

A mirror batch is held open in the middle (at its `syncfs`, the step that made clients wait
up to 2.6 s) while clients write into `appointments/` over HTTP, against a real local server
and store. Writes that span the store (a calendar's properties, the CLI's base set-up) still
wait for the batch, and a second batch of the same mirror waits for the first, here or in
another process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from calmirror.local import LocalServer, LocalStore, bulk, layout
from calmirror.local.store_lock import lane_file
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event

AUTH = (USER, PASSWORD)
PROPPATCH = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
    "<D:displayname>Renamed</D:displayname></D:prop></D:set></D:propertyupdate>"
)


@pytest.fixture
def work(store: LocalStore) -> LocalStore:
    store.ensure_mirror("work", "Work", None)
    return store


class Paused:
    """Every mirror or busy/ batch stops at its `syncfs` until `release` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[Paused]:
    pause = Paused()
    real = bulk.flush_filesystem

    def flush(path: str) -> None:
        pause.entered.set()
        assert pause.release.wait(30)
        real(path)

    monkeypatch.setattr(bulk, "flush_filesystem", flush)
    try:
        yield pause
    finally:
        pause.release.set()


@contextmanager
def running(work: Callable[[], object]) -> Iterator[threading.Thread]:
    """`work` in a thread for the block; it must have ended by the block's end."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # surfaced below
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield thread
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []


def batch(store: LocalStore, uid: str) -> Callable[[], object]:
    return lambda: store.apply_mirror("work", [(f"{uid}.ics", event(uid))], [])


def put(server: LocalServer, name: str, uid: str) -> requests.Response:
    return requests.put(
        f"{server.url}{USER}/{name}/{uid}.ics",
        data=event(uid, start="20261202T100000Z", end="20261202T110000Z"),
        headers={"Content-Type": "text/calendar"},
        auth=AUTH,
        timeout=(5, 60),
    )


def test_clients_write_appointments_while_a_mirror_batch_is_held(
    server: LocalServer, work: LocalStore, paused: Paused
) -> None:
    with running(batch(work, "m1")) as writer:
        assert paused.entered.wait(10)
        # Each answer comes while the batch still holds its lane: none waited for it.
        assert put(server, layout.APPOINTMENTS, "a1").status_code == 201
        assert put(server, layout.BLOCKED, "b1").status_code == 201
        url = f"{server.url}{USER}/{layout.APPOINTMENTS}/a1.ics"
        assert requests.delete(url, auth=AUTH, timeout=(5, 60)).status_code in (200, 204)
        assert put(server, layout.APPOINTMENTS, "a2").status_code == 201
        assert writer.is_alive()
        paused.release.set()
    assert set(work.items(layout.mirror_name("work"))) == {"m1.ics"}
    assert set(work.items(layout.APPOINTMENTS)) == {"a2.ics"}
    assert set(work.items(layout.BLOCKED)) == {"b1.ics"}


def test_a_write_across_the_store_waits_for_the_held_batch(
    server: LocalServer, work: LocalStore, paused: Paused
) -> None:
    answers: list[int] = []

    def proppatch() -> None:
        url = f"{server.url}{USER}/{layout.APPOINTMENTS}/"
        answers.append(requests.request("PROPPATCH", url, data=PROPPATCH, auth=AUTH, timeout=(5, 60)).status_code)

    with running(batch(work, "m1")) as writer:
        assert paused.entered.wait(10)
        with running(proppatch) as changing, running(work.ensure_base) as setting_up:
            changing.join(1.0)
            setting_up.join(0.2)
            assert changing.is_alive() and setting_up.is_alive() and answers == []
            assert writer.is_alive()
            paused.release.set()
    assert answers == [207]


def test_batches_of_one_mirror_go_one_at_a_time_and_busy_does_not_wait(work: LocalStore, paused: Paused) -> None:
    with running(batch(work, "m1")):
        assert paused.entered.wait(10)
        paused.entered.clear()
        with running(batch(work, "m2")) as second:
            second.join(1.0)
            assert second.is_alive()  # waits for the first batch's lane, not at the pause
            assert not paused.entered.is_set()
            paused.release.set()
    assert set(work.items(layout.mirror_name("work"))) == {"m1.ics", "m2.ics"}


def test_a_batch_of_busy_does_not_wait_for_a_mirror_batch(work: LocalStore, paused: Paused) -> None:
    with running(batch(work, "m1")):
        assert paused.entered.wait(10)
        paused.entered.clear()
        with running(lambda: work.apply_busy([("b.ics", event("b"))], [])):
            # It reaches the same pause inside busy/'s lane while the mirror's batch holds its own.
            assert paused.entered.wait(10)
            paused.release.set()
    assert set(work.items(layout.BUSY)) == {"b.ics"}


def test_a_lane_held_by_another_process_keeps_the_batch_out_not_the_clients(
    server: LocalServer, work: LocalStore, tmp_path: Path
) -> None:
    lane = lane_file(work.store_dir, f"{USER}/{layout.mirror_name('work')}")
    lane.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); sys.stdin.read()",
            str(lane),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with running(batch(work, "m1")) as writer:
            assert put(server, layout.APPOINTMENTS, "a1").status_code == 201
            writer.join(0.5)
            assert writer.is_alive()  # the other process's writer of this mirror goes first
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(10)
    finally:
        holder.kill()
        holder.wait()
    assert set(work.items(layout.mirror_name("work"))) == {"m1.ics"}
