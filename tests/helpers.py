"""Small helpers for tests that drive real servers, and the in-thread daemon harness.

The builders the benchmarks share (the test account, `event()`, connected homes) live in
`calmirror.testing` and are re-exported here, so a test has one place to import from.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from calmirror import config, credentials
from calmirror.daemon import Daemon
from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State
from calmirror.testing import APP_PASSWORD, APPLE_ID
from calmirror.testing.homes import connected_home, engine_for
from calmirror.testing.ical import event
from calmirror.transform import extract_uid

__all__ = [
    "APPLE_ID",
    "APP_PASSWORD",
    "Running",
    "connected_home",
    "daemon_running",
    "engine_for",
    "event",
    "start_daemon",
    "status_json",
    "wait_for",
    "wrong_in_icloud",
]


@contextmanager
def mirrored_once(home: Home) -> Iterator[Engine]:
    """An engine on `home` after one mirror pass of its one conflict calendar, which must
    report no error; its client and state are closed after the block."""
    engine = Engine(home, config.load(home.config_file), State(home.state_db))
    client = engine.client()
    try:
        (report,) = engine.mirror_pass(client)
        assert not report.error, report.error
        yield engine
    finally:
        client.close()
        engine.state.close()


def wait_for(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def wrong_in_icloud(emu: Emulator, calendar_id: str, expected: Mapping[str, str | None]) -> list[str]:
    """What iCloud's calendar gets wrong of the appointments a client wrote: `expected` maps
    each UID to its latest SUMMARY (None: deleted). Each must be there exactly once with that
    summary, and a deleted one not at all. Empty when iCloud has converged."""
    by_uid: dict[str, list[str]] = defaultdict(list)
    for body in emu.items(calendar_id).values():
        by_uid[extract_uid(body) or ""].append(body)
    wrong = []
    for uid, summary in expected.items():
        copies = by_uid.get(uid, [])
        if summary is None and copies:
            wrong.append(f"{uid}: deleted locally, {len(copies)} in iCloud")
        elif summary is not None and (len(copies) != 1 or f"SUMMARY:{summary}\r\n" not in copies[0]):
            wrong.append(f"{uid}: {summary!r} locally, {len(copies)} in iCloud")
    return wrong


def status_json(home: Home | Path) -> dict[str, Any]:
    """`calmirror status --json` for `home` (a Home or its data folder), run in a child process
    exactly as a user runs it, parsed. A failing command fails the test with what it said."""
    data_dir = home.data_dir if isinstance(home, Home) else home
    env = {**os.environ, "CALMIRROR_HOME": str(data_dir), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "calmirror", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def busy_json(
    home: Home | Path, *extra: str, start: str = "2026-12-01T00:00", end: str = "2026-12-15T00:00"
) -> list[tuple[datetime, datetime]]:
    """`calmirror availability --json` in UTC over [start, end) for `home`, run in a child
    process as a user runs it: its busy intervals. `extra` adds options (`--no-daemon`)."""
    data_dir = home.data_dir if isinstance(home, Home) else home
    env = {**os.environ, "CALMIRROR_HOME": str(data_dir)}
    command = ["availability", "--from", start, "--to", end, "--tz", "UTC", "--json", *extra]
    done = subprocess.run(
        [sys.executable, "-m", "calmirror", *command], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [
        (datetime.fromisoformat(i["start"]), datetime.fromisoformat(i["end"]))
        for i in json.loads(done.stdout)["intervals"]
    ]


# --- the daemon in a thread of the test process ----------------------------------------------


@dataclass
class Running:
    """A daemon started by `start_daemon`, with its local URL and login, and requests to its store.

    It runs in the test's own process, so its pid file names pytest: call `release_pid_file`
    before a CLI command that signals the daemon (SIGUSR1, SIGHUP), or the signal hits pytest.
    """

    daemon: Daemon
    url: str
    auth: tuple[str, str]
    home: Home
    thread: threading.Thread

    def collection_url(self, collection: str) -> str:
        return f"{self.url}{self.auth[0]}/{collection}/"

    def href(self, collection: str, name: str) -> str:
        return self.collection_url(collection) + name

    def put(self, name: str, body: str, collection: str = "appointments") -> requests.Response:
        return requests.put(
            self.href(collection, name),
            data=body.encode(),
            auth=self.auth,
            timeout=10,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )

    def delete(self, name: str, collection: str = "appointments") -> requests.Response:
        return requests.delete(self.href(collection, name), auth=self.auth, timeout=10)

    def state(self) -> State:
        return State(self.home.state_db)

    def release_pid_file(self) -> None:
        """Remove the pid file, so the CLI finds no daemon to signal instead of signalling pytest."""
        self.home.pid_file.unlink()

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "daemon did not stop"


def start_daemon(home: Home) -> Running:
    """The real daemon on `home`, in a thread: tests reach into it (settings, engine, wake events)
    and start in a fraction of the time a child process takes. Returns once it serves."""
    ready = threading.Event()
    daemon = Daemon(home, config.load(home.config_file), on_ready=lambda url: ready.set())
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    assert ready.wait(30), "daemon did not become ready"
    acct = credentials.local_account(home)
    return Running(daemon, daemon.url, (acct.username, acct.password), home, thread)


@contextmanager
def daemon_running(home: Home) -> Iterator[Running]:
    """`start_daemon`, stopped on the way out whatever happened (for fixtures of any scope)."""
    run = start_daemon(home)
    try:
        yield run
    finally:
        run.stop()


@contextmanager
def write_lock_held(store: Any) -> Iterator[Callable[[], None]]:
    """Another thread holds `store`'s exclusive store lock (a write in progress) for the block,
    or until the `release` it yields is called."""
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store._locked("w"):
            held.set()
            release.wait(20)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        assert held.wait(5)
        yield release.set
    finally:
        release.set()
        thread.join(5)


def interruptible() -> None:
    """A child's Ctrl-C (SIGINT) back to the default before it starts: a shell that runs the
    tests in the background (`.ci/run &`) starts them with SIGINT ignored, every child inherits
    that, and Python then never raises KeyboardInterrupt, so a test's SIGINT did nothing. For
    `preexec_fn` of a child the test interrupts."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def emulator_serve(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """`calmirror emulator serve` as a child process on a free port, as a newcomer starts it:
    the password through the environment (`PW`), never on the command line."""
    command = [sys.executable, "-m", "calmirror", "emulator", "serve", "--apple-id", APPLE_ID, "--password-env", "PW"]
    return subprocess.Popen(
        [*command, "--port", "0", *args],
        env={**os.environ, "PW": APP_PASSWORD, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
