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
from typing import TYPE_CHECKING, Annotated

import typer

from calmirror import config, logs
from calmirror.cli.context import console, ctx_of
from calmirror.home import Home

if TYPE_CHECKING:
    from calmirror.daemon import Daemon
    from calmirror.emulator import Emulator

DEMO_APPLE_ID = "demo@example.com"
DEMO_PASSWORD = "abcd-efgh-ijkl-mnop"  # the emulator's fake app-specific password
DEMO_PORT = 5232
DEMO_LENGTH = timedelta(minutes=45)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _appointment(uid: str, start: datetime, end: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror//demo//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{datetime.now(UTC).strftime(fmt)}\r\nDTSTART:{start.astimezone(UTC).strftime(fmt)}\r\n"
        f"DTEND:{end.astimezone(UTC).strftime(fmt)}\r\nSUMMARY:Demo consultation\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _free_slot(daemon: Daemon) -> tuple[datetime, datetime]:
    """The first free 45 minutes on a weekday from tomorrow, 09:00-17:00, as the availability
    engine sees every calendar: the demo's own appointment must not double-book anyone."""
    from calmirror.availability import slots

    zone = daemon.settings.availability.zone
    day = datetime.now(zone).date() + timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), zone)
    end = start + timedelta(days=21)
    free = slots.free_slots(
        daemon.busy.busy(start, end),
        start,
        end,
        DEMO_LENGTH,
        zone,
        slots.parse_within("09:00-17:00"),
        slots.parse_days("mon-fri"),
    )
    if free:
        return free[0]
    fallback = start.replace(hour=15)  # a calendar full for three weeks: any time will clash
    return fallback, fallback + DEMO_LENGTH


def _prepare(home: Home, emu_url: str, port: int) -> None:
    from calmirror import account, config_edit
    from calmirror.state import State

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


def _round_trip(home: Home, url: str, emu: Emulator, work_id: str, slot: tuple[datetime, datetime], show: str) -> None:
    from calmirror import credentials
    from calmirror.local import loopback
    from calmirror.state import State

    acct = credentials.local_account(home)
    state = State(home.state_db)
    try:
        for m in state.mirrors():
            console.print(
                f"  mirrored iCloud calendar -> {url}{acct.username}/icloud-{m.slug}/ ({m.item_count} events)"
            )
    finally:
        state.close()
    uid = f"demo-{uuid.uuid4()}"
    started = time.monotonic()
    answer = loopback.ask(
        "PUT",
        f"{url}{acct.username}/appointments/{uid}.ics",
        body=_appointment(uid, *slot).encode(),
        auth=(acct.username, acct.password),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
        timeout=10,
    )
    when = slot[0].astimezone().strftime("%a %d %b %H:%M")
    console.print(
        f"  wrote an appointment ({when}, a free slot) into {url}{acct.username}/appointments/ "
        f"-> {f'HTTP {answer.status}' if answer else 'no answer'}"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(uid in body for body in emu.items(work_id).values()):
            console.print(
                f"  ...and it reached the linked iCloud calendar (Work) in {(time.monotonic() - started) * 1000:.0f} ms"
            )
            break
        time.sleep(0.05)
    else:
        console.print("  the appointment has not reached iCloud yet; see `calmirror status`")
    console.print("\nPoint any CalDAV client at the local calendar:")
    console.print(f"  URL:      {url}\n  Username: {acct.username}\n  Password: {acct.password}")
    console.print(f"\nOr open the week, your calendars and the outbox in a browser: {url}.calmirror/ (same login)")
    console.print(show)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        seconds: Annotated[
            float | None, typer.Option("--seconds", help="Stop after this many seconds (default: run until Ctrl-C).")
        ] = None,
    ) -> None:
        """Run calmirror against the bundled iCloud emulator: mirror, push, then serve."""
        from calmirror.daemon import Daemon
        from calmirror.emulator import Emulator

        c = ctx_of(ctx)
        logs.setup("warning", c.verbose)
        with tempfile.TemporaryDirectory(prefix="calmirror-demo-") as tmp:
            home = Home(config_file=Path(tmp) / "config.toml", data_dir=Path(tmp))
            console.print("Starting the bundled iCloud emulator (sample calendars Home, Work, Family, Reminders)...")
            with Emulator(apple_id=DEMO_APPLE_ID, password=DEMO_PASSWORD, seed="sample") as emu:
                port = DEMO_PORT if _free(DEMO_PORT) else 0
                _prepare(home, emu.url, port)
                console.print(
                    f"Connected {DEMO_APPLE_ID}; linked calendar: Work; conflict calendars: Work, Home, Family"
                )
                daemon = Daemon(home, config.load(home.config_file))
                work_id = emu.calendar_id("Work")

                def ready(url: str) -> None:
                    def script() -> None:
                        console.print(f"Local system calendar serving on {url}")
                        if port != DEMO_PORT:
                            console.print(f"  (port {DEMO_PORT} is in use, so the demo took a free port)")
                        until = "Press Ctrl-C to stop." if seconds is None else f"The demo stops in {seconds:g} s."
                        _round_trip(home, url, emu, work_id, _free_slot(daemon), until)
                        if seconds is not None:
                            time.sleep(max(0.0, seconds))
                            daemon.stop()

                    threading.Thread(target=script, name="demo", daemon=True).start()

                daemon.on_ready = ready
                daemon.run()
        console.print("Demo stopped.")
