"""A daemon on a home with no account still serves local calendars and says, once a minute and
in systemd's STATUS, that it is not connected."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from pathlib import Path

import pytest
import requests

from calmirror import config, credentials, daemon
from calmirror.home import Home
from calmirror.sdnotify import Notifier
from tests.helpers import event, wait_for


def test_an_unconnected_daemon_warns_every_interval_and_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert daemon.NOT_CONNECTED_EVERY_S == 60.0
    home = Home(config_file=tmp_path / "home" / "config.toml", data_dir=tmp_path / "home")
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(0.2)
    ready = threading.Event()
    run = daemon.Daemon(
        home, config.load(home.config_file), notifier=Notifier(str(tmp_path / "notify")), on_ready=lambda u: ready.set()
    )
    run.not_connected_every = 0.5
    caplog.set_level(logging.WARNING, logger="calmirror.daemon")
    thread = threading.Thread(target=run.run, daemon=True)
    thread.start()
    try:
        assert ready.wait(30)
        received: list[str] = []

        def statuses() -> bool:
            with contextlib.suppress(TimeoutError):
                received.append(listener.recv(4096).decode())
            return any("not connected: run `calmirror connect" in m for m in received)

        assert wait_for(statuses, 10)
        assert wait_for(
            lambda: sum("not connected: run `calmirror connect" in r.getMessage() for r in caplog.records) >= 2, 10
        )
        acct = credentials.local_account(home)
        answer = requests.put(
            f"{run.url}{acct.username}/blocked/b.ics",
            data=event("blocked-1").encode(),
            auth=(acct.username, acct.password),
            timeout=10,
        )
        assert answer.status_code == 201
    finally:
        run.stop()
        thread.join(15)
        listener.close()
    warnings = [r for r in caplog.records if "not connected" in r.getMessage()]
    assert all(r.levelno == logging.WARNING and r.name == "calmirror.daemon" for r in warnings)
