"""A client's read of a mirror takes no store lock: it answers while a write holds the lock
(a mirror batch, a client's PUT), where a read of `appointments/` waits for the write."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from calmirror.local import LocalServer, LocalStore, layout
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event
from tests.helpers import write_lock_held


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    local = LocalStore(tmp_path / "store", USER)
    local.ensure_base()
    local.ensure_mirror("work", "Work", None)
    local.apply_mirror("work", [("m.ics", event("m"))], [])
    local.write_appointment("a.ics", event("a"))
    return local


def test_a_mirror_read_answers_while_a_write_holds_the_lock(server: LocalServer, store: LocalStore) -> None:
    answers: dict[str, int] = {}

    def get(name: str, href: str) -> None:
        reply = requests.get(f"{server.url}{USER}/{name}/{href}", auth=(USER, PASSWORD), timeout=20)
        answers[name] = reply.status_code

    with write_lock_held(store) as release:
        mirror = layout.mirror_name("work")
        get(mirror, "m.ics")  # not waiting for the writer
        assert answers == {mirror: 200}
        waiting = threading.Thread(target=get, args=(layout.APPOINTMENTS, "a.ics"), daemon=True)
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and layout.APPOINTMENTS not in answers  # waits for the write
        release()
        waiting.join(10)
    assert answers[layout.APPOINTMENTS] == 200
