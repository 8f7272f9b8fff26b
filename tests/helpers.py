"""Small helpers for tests that drive real servers, and the in-thread daemon harness."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from calmirror import config, config_edit, credentials
from calmirror.account import connect
from calmirror.daemon import Daemon
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State

APPLE_ID = "me@example.com"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


def event(
    uid: str,
    summary: str = "Meeting",
    start: str = "20261201T100000Z",
    end: str | None = "20261201T110000Z",
    extra: str = "",
) -> str:
    end_line = f"DTEND:{end}\r\n" if end else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{start}\r\n{end_line}SUMMARY:{summary}\r\n"
        f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def wait_for(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def connected_home(
    root: Path,
    emu: object,
    *,
    linked: str | None = "Work",
    conflicts: tuple[str, ...] = ("Work",),
    extra_config: str = "",
) -> Home:
    """A home connected to the emulator with a linked calendar and conflict calendars chosen."""
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n" + extra_config, encoding="utf-8")
    state = State(home.state_db)
    try:
        calendars = connect(home, config.load(home.config_file), state, APPLE_ID, APP_PASSWORD, emu.url)  # type: ignore[attr-defined]
    finally:
        state.close()
    ids = {c.name: c.id for c in calendars}
    if linked:
        config_edit.set_linked(home.config_file, ids[linked], also_conflict=False)
    config_edit.set_conflicts(home.config_file, [ids[n] for n in conflicts])
    return home


def engine_for(home: Home) -> Engine:
    return Engine(home, config.load(home.config_file), State(home.state_db))


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
