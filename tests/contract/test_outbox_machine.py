"""The outbox, `plan_push` and `Pusher` as one state machine, against the emulator and a real store.

Hypothesis drives random histories of a booking client (create, edit, delete, re-create an
appointment over CalDAV in the local `appointments/`), the daemon (detect changes, push some
rows), crashes between any two of those steps (every in-memory object dropped, the state
reopened from its file and recovered as `Daemon.run` does), iCloud answering 409/503 (and
412, or 404 to a PUT, for writes that did not happen), answers lost after the write landed (a read timeout
while the emulator is slow), and another device editing or deleting a pushed appointment in
iCloud (genuine 412s and 404s) just before the client edits it again.

Invariant, checked whenever the queue is drained and at the end of every history: every live
appointment is in the linked iCloud calendar exactly once with its latest content, nothing
deleted survives there, and no row failed.

The emulator produces every answer; no fake remote. Two things are kept out on purpose: a 404
to a DELETE that did not happen, or to the GET that checks a 412 (the pusher rightly takes it
as "already gone"), and Retry-After on 503s (the account-wide hold is `Health`'s, tested elsewhere; here time only
passes through `State.retry_pending_now`).
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule, run_state_machine_as_test

from calmirror import config, credentials
from calmirror.detect import ChangeDetector
from calmirror.emulator import Emulator
from calmirror.health import Health
from calmirror.home import Home
from calmirror.local import APPOINTMENTS, LocalServer, LocalStore
from calmirror.push import Pusher
from calmirror.remote import ICloudClient
from calmirror.state import State
from tests.helpers import APP_PASSWORD, APPLE_ID, connected_home, event, wait_for

PROFILE = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no "explain": slow on a machine this size
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: Injected answers (status, method). A 404 only to a PUT: to a DELETE, or to the GET that checks
#: a 412, it would be a lie the pusher rightly believes ("already gone"). Real 404s and 412s come
#: from another device's edits (`another_device_then_client_edit`).
FAULTS = [
    (503, "PUT"),
    (503, "DELETE"),
    (503, "GET"),
    (409, "PUT"),
    (409, "DELETE"),
    (412, "PUT"),
    (412, "DELETE"),
    (404, "PUT"),
]

UNFOLD = re.compile(r"\r?\n[ \t]")


def field(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}(?:;[^:]*)?:(.*?)\r?$", UNFOLD.sub("", text), re.MULTILINE)
    return match.group(1) if match else None


class Daemon:
    """The daemon's in-memory objects for one home; a crash drops them all."""

    def __init__(self, home: Home, emu: Emulator) -> None:
        self.settings = config.load(home.config_file)
        self.state = State(home.state_db)
        self.state.recover_in_flight()
        acct = credentials.local_account(home)
        self.store = LocalStore(home.store_dir, acct.username)
        self.detector = ChangeDetector(self.state, self.store)
        self.pusher = Pusher(self.state, self.store, self.settings, Health(self.state))
        self.client = ICloudClient(emu.url, APPLE_ID, APP_PASSWORD)
        self.detector.reconcile()

    def close(self) -> None:
        self.client.close()
        self.state.close()


class OutboxMachine(RuleBasedStateMachine):
    emu: Emulator
    root: Path
    runs = itertools.count()

    uids = Bundle("uids")
    dead = Bundle("dead")

    def __init__(self) -> None:
        super().__init__()
        run = next(self.runs)
        self.prefix = f"m{run}-{uuid.uuid4().hex[:6]}"  # one emulator account: UIDs unique across runs
        name = f"Linked {run}"
        self.cal_id = self.emu.create_calendar(name)
        self.home = connected_home(self.root / f"run{run}", self.emu, linked=name, conflicts=(name,))
        acct = credentials.local_account(self.home)
        self.server = LocalServer(self.home.store_dir, port=0, username=acct.username, password=acct.password)
        base = self.server.start()
        self.http = requests.Session()
        self.http.auth = (acct.username, acct.password)
        self.appointments = f"{base}{acct.username}/{APPOINTMENTS}/"
        self.daemon = Daemon(self.home, self.emu)
        self.live: dict[str, str] = {}  # uid -> latest SUMMARY the client wrote
        self.versions = itertools.count()
        self.serial = itertools.count()

    def teardown(self) -> None:
        try:
            if hasattr(self, "daemon"):
                self.settle()
        finally:
            self.emu.faults.clear()
            if hasattr(self, "daemon"):
                self.daemon.close()
            if hasattr(self, "server"):
                self.server.stop()
                self.http.close()

    # --- the booking client ----------------------------------------------------------------

    def _write(self, uid: str) -> None:
        summary = f"v{next(self.versions)}"
        answer = self.http.put(
            f"{self.appointments}{uid}.ics",
            data=event(uid, summary=summary).encode(),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=10,
        )
        assert answer.status_code in (201, 204), answer.status_code
        self.live[uid] = summary

    @rule(target=uids)
    def create(self) -> str:
        uid = f"{self.prefix}-{next(self.serial)}"
        self._write(uid)
        return uid

    @rule(uid=uids)
    def edit(self, uid: str) -> None:
        if uid in self.live:
            self._write(uid)

    @rule(target=dead, uid=consumes(uids))
    def delete(self, uid: str) -> str:
        answer = self.http.delete(f"{self.appointments}{uid}.ics", timeout=10)
        assert answer.status_code in (200, 204), answer.status_code
        del self.live[uid]
        return uid

    @rule(target=uids, uid=consumes(dead))
    def recreate(self, uid: str) -> str:
        """The same UID booked again after its deletion."""
        self._write(uid)
        return uid

    # --- the daemon ------------------------------------------------------------------------

    @rule()
    def detect(self) -> None:
        self.daemon.detector.scan()

    @rule(count=st.integers(1, 3))
    def push(self, count: int) -> None:
        self.daemon.pusher.drain(self.daemon.client, limit=count)

    @rule()
    def time_passes(self) -> None:
        self.daemon.state.retry_pending_now()

    @rule()
    def crash(self) -> None:
        self.daemon.close()
        self.daemon = Daemon(self.home, self.emu)

    @rule()
    def crash_after_claiming(self) -> None:
        """Killed after a row went in flight and before its write was sent."""
        self.daemon.state.claim(time.time(), limit=1)
        self.crash()

    # --- iCloud ------------------------------------------------------------------------------

    @rule(answer=st.sampled_from(FAULTS), count=st.integers(1, 2))
    def icloud_fails(self, answer: tuple[int, str], count: int) -> None:
        status, method = answer
        self.emu.faults.fail(count=count, status=status, retry_after=None, method=method, path_contains=self.cal_id)

    @rule()
    def answer_lost(self) -> None:
        """The next request reaches iCloud and is carried out, but its answer never arrives."""
        if not self.daemon.state.outbox(("pending",)):
            return
        self.emu.faults.delay(0.4, path_contains=self.cal_id)
        seen = len(self.emu.requests)
        with ICloudClient(self.emu.url, APPLE_ID, APP_PASSWORD, timeout=(5.0, 0.1)) as impatient:
            self.daemon.pusher.drain(impatient, limit=1)
        if self.emu.faults.pending():  # nothing was sent: disarm the stall
            self.emu.faults.clear()
        else:  # the stalled request is carried out after the client gave up: wait for it
            assert wait_for(lambda: len(self.emu.requests) > seen, 5)

    def _remote_name(self, uid: str) -> str | None:
        for path, text in self.emu.items(self.cal_id).items():
            if field(text, "UID") == uid:
                return path.rsplit("/", 1)[-1]
        return None

    @rule(uid=uids, delete=st.booleans())
    def another_device_then_client_edit(self, uid: str, delete: bool) -> None:
        """Someone changes or deletes the pushed copy in iCloud; then the client edits again."""
        if uid not in self.live:
            return
        name = self._remote_name(uid)
        if name is not None:
            if delete:
                self.emu.delete_item(self.cal_id, name)
            else:
                self.emu.put_item(self.cal_id, name, event(uid, summary="changed on an iPhone"))
        self._write(uid)

    # --- the promise -----------------------------------------------------------------------

    @invariant()
    def one_row_per_appointment(self) -> None:
        rows = Counter(row.uid for row in self.daemon.state.outbox(("pending", "in_flight", "failed", "done")))
        assert all(count == 1 for count in rows.values())

    @rule()
    def settle(self) -> None:
        """Drain the queue (time passing as needed); then iCloud must match the client."""
        self.daemon.detector.scan()
        for _ in range(40):
            if not self.daemon.state.outbox(("pending", "in_flight")):
                break
            self.daemon.state.retry_pending_now()
            self.daemon.pusher.drain(self.daemon.client)
        assert self.daemon.state.outbox(("pending", "in_flight", "failed")) == []
        remote = list(self.emu.items(self.cal_id).values())
        copies = Counter(field(text, "UID") for text in remote)
        assert copies == Counter(self.live.keys()), "every live appointment exactly once, nothing deleted"
        latest = {field(text, "UID"): field(text, "SUMMARY") for text in remote}
        assert latest == self.live, "each with its latest content"


@pytest.fixture(scope="module")
def machine_emu() -> Iterator[Emulator]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emulator:
        yield emulator


def test_outbox_delivers_exactly_once_through_crashes_and_faults(machine_emu: Emulator, tmp_path: Path) -> None:
    OutboxMachine.emu = machine_emu
    OutboxMachine.root = tmp_path
    run_state_machine_as_test(OutboxMachine, settings=PROFILE)
