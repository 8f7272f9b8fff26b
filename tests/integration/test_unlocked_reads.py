"""A client's read of a mirror takes no store lock: it answers while a write holds the lock
(a mirror batch, a client's PUT), where a read of `appointments/` waits for the write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from calmirror.local import LocalServer, LocalStore, layout
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    local = LocalStore(tmp_path / "store", USER)
    local.ensure_base()
    local.ensure_mirror("work", "Work", None)
    local.apply_mirror("work", [("m.ics", event("m"))], [])
    local.write_appointment("a.ics", event("a"))
    return local


@pytest.fixture
def server(store: LocalStore) -> Iterator[LocalServer]:
    with LocalServer(store.store_dir, port=0, username=USER, password=PASSWORD) as srv:
        yield srv


def test_a_mirror_read_answers_while_a_write_holds_the_lock(server: LocalServer, store: LocalStore) -> None:
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store._locked("w"):
            held.set()
            release.wait(20)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert held.wait(5)
    answers: dict[str, int] = {}

    def get(name: str, href: str) -> None:
        reply = requests.get(f"{server.url}{USER}/{name}/{href}", auth=(USER, PASSWORD), timeout=20)
        answers[name] = reply.status_code

    mirror = layout.mirror_name("work")
    get(mirror, "m.ics")  # not waiting for the writer
    assert answers == {mirror: 200}
    waiting = threading.Thread(target=get, args=(layout.APPOINTMENTS, "a.ics"), daemon=True)
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive() and layout.APPOINTMENTS not in answers  # waits for the write
    release.set()
    waiting.join(10)
    thread.join(5)
    assert answers[layout.APPOINTMENTS] == 200
