"""`calmirror demo`: the whole product against the bundled iCloud emulator, no Apple account.

It connects, links Work, mirrors Home/Work/Family, pushes one appointment and shows it
arriving in the emulator, then keeps serving so any CalDAV client can look around.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import requests
import typer

from calmirror import account, config, config_edit, credentials, logs
from calmirror.cli.context import console, ctx_of
from calmirror.daemon import Daemon
from calmirror.home import Home
from calmirror.state import State

DEMO_APPLE_ID = "demo@example.com"
DEMO_PASSWORD = "abcd-efgh-ijkl-mnop"  # the emulator's fake app-specific password


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _appointment(uid: str) -> str:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=15, minute=0, second=0, microsecond=0)
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror//demo//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{datetime.now(UTC).strftime(fmt)}\r\nDTSTART:{start.strftime(fmt)}\r\n"
        f"DTEND:{(start + timedelta(minutes=45)).strftime(fmt)}\r\nSUMMARY:Demo consultation\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _prepare(home: Home, emu_url: str, port: int) -> None:
    home.ensure()
    home.config_file.write_text(f"[server]\nport = {port}\n\n[sync]\ninterval = 10\n", encoding="utf-8")
    settings = config.load(home.config_file)
    state = State(home.state_db)
    try:
        calendars = account.connect(home, settings, state, DEMO_APPLE_ID, DEMO_PASSWORD, emu_url)
        by_name = {c.name: c for c in calendars}
        config_edit.set_linked(home.config_file, by_name["Work"].id, also_conflict=True)
        config_edit.set_conflicts(home.config_file, [by_name["Work"].id, by_name["Home"].id, by_name["Family"].id])
    finally:
        state.close()


def _round_trip(home: Home, url: str, emu: object, work_id: str, show: bool) -> None:
    acct = credentials.local_account(home)
    state = State(home.state_db)
    try:
        for m in state.mirrors():
            console.print(
                f"  mirrored iCloud calendar -> {url}{acct.username}/icloud-{m['slug']}/ ({m['item_count']} events)"
            )
    finally:
        state.close()
    uid = f"demo-{uuid.uuid4()}"
    started = time.monotonic()
    answer = requests.put(
        f"{url}{acct.username}/appointments/{uid}.ics",
        data=_appointment(uid).encode(),
        auth=(acct.username, acct.password),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
        timeout=10,
    )
    console.print(f"  wrote an appointment into {url}{acct.username}/appointments/ -> HTTP {answer.status_code}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(uid in body for body in emu.items(work_id).values()):  # type: ignore[attr-defined]
            console.print(
                f"  ...and it reached the linked iCloud calendar (Work) in {(time.monotonic() - started) * 1000:.0f} ms"
            )
            break
        time.sleep(0.05)
    else:
        console.print("  the appointment has not reached iCloud yet; see `calmirror status`")
    if show:
        console.print("\nPoint any CalDAV client at the local calendar:")
        console.print(f"  URL:      {url}\n  Username: {acct.username}\n  Password: {acct.password}")
        console.print("Press Ctrl-C to stop.")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        seconds: Annotated[
            float | None, typer.Option("--seconds", help="Stop after this many seconds (default: run until Ctrl-C).")
        ] = None,
    ) -> None:
        """Run calmirror against the bundled iCloud emulator: mirror, push, then serve."""
        from calmirror.emulator import Emulator

        c = ctx_of(ctx)
        logs.setup("warning", c.verbose)
        with tempfile.TemporaryDirectory(prefix="calmirror-demo-") as tmp:
            home = Home(config_file=Path(tmp) / "config.toml", data_dir=Path(tmp))
            console.print("Starting the bundled iCloud emulator (sample calendars Home, Work, Family, Reminders)...")
            with Emulator(apple_id=DEMO_APPLE_ID, password=DEMO_PASSWORD, seed="sample") as emu:
                port = 5232 if _free(5232) else 0
                _prepare(home, emu.url, port)
                console.print(
                    f"Connected {DEMO_APPLE_ID}; linked calendar: Work; conflict calendars: Work, Home, Family"
                )
                daemon = Daemon(home, config.load(home.config_file))
                work_id = emu.calendar_id("Work")

                def ready(url: str) -> None:
                    def script() -> None:
                        console.print(f"Local system calendar serving on {url}")
                        _round_trip(home, url, emu, work_id, show=True)
                        if seconds is not None:
                            time.sleep(max(0.0, seconds))
                            daemon.stop()

                    threading.Thread(target=script, name="demo", daemon=True).start()

                daemon.on_ready = ready
                daemon.run()
        console.print("Demo stopped.")
