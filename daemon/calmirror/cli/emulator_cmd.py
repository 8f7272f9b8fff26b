"""`calmirror emulator serve`: the loopback iCloud emulator in the foreground.

For trying calmirror (or any CalDAV client) without an Apple account. The password
can come from an environment variable or stdin so it need not sit in shell history
or the process list; `--password` stays for scripts that do not care.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from calmirror.emulator import Emulator

SEED_CHUNK = 2000  # generated events written per step of `--events`, each step said

app = typer.Typer(help="Run the bundled loopback iCloud CalDAV emulator.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Run the bundled loopback iCloud CalDAV emulator."""


def _password(password: str | None, password_env: str | None, password_stdin: bool) -> str:
    given = [source for source in (password is not None, password_env is not None, password_stdin) if source]
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one of --password, --password-env or --password-stdin", param_hint="password"
        )
    if password is not None:
        return password
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise typer.BadParameter(f"environment variable {password_env} is not set", param_hint="--password-env")
        return value
    value = sys.stdin.readline().strip()
    if not value:
        raise typer.BadParameter("no password on stdin", param_hint="--password-stdin")
    return value


@app.command()
def serve(
    apple_id: Annotated[str, typer.Option("--apple-id", help="Apple ID the emulator accepts.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="App-specific password it accepts (visible to other local users; prefer --password-env)."
        ),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", metavar="VAR", help="Read the password from this environment variable."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Front port on 127.0.0.1 (0: any free port).")] = 0,
    partition_port: Annotated[
        int,
        typer.Option(
            "--partition-port",
            help="Partition host port on localhost (0: any free port). Restarting on another one "
            "plays iCloud moving the account to another server.",
        ),
    ] = 0,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Keep the store in this folder (reused "
            "if it already holds an account; default: a temporary "
            "folder removed on exit).",
        ),
    ] = None,
    empty: Annotated[bool, typer.Option("--empty", help="Start with the four calendars but no events.")] = False,
    events: Annotated[
        int,
        typer.Option("--events", min=0, help="Also put this many generated events into Work, from today on."),
    ] = 0,
    listing_lag: Annotated[
        float,
        typer.Option(
            "--listing-lag",
            min=0.0,
            metavar="SECONDS",
            envvar="CALMIRROR_EMULATOR_LISTING_LAG",
            help="Play iCloud's eventual consistency: an event written less than SECONDS ago is missing "
            "from listings (sync, calendar-query, Depth-1 PROPFIND); a GET or multiget finds it at once.",
        ),
    ] = 0.0,
) -> None:
    """Serve the emulator until Ctrl-C or SIGTERM, printing the URL to connect to."""
    from calmirror.emulator import Emulator

    secret = _password(password, password_env, password_stdin)
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    emu = Emulator(
        apple_id=apple_id,
        password=secret,
        data_dir=str(data) if data else None,
        port=port,
        seed="empty" if empty else "sample",
        partition_port=partition_port,
        listing_lag_s=listing_lag,
    )
    try:
        emu.start()
    except OSError as exc:
        typer.echo(f"calmirror: cannot start the emulator: {exc.strerror or exc}", err=True)
        raise typer.Exit(5) from exc
    if events:
        from datetime import date

        from calmirror.emulator.seed import generated_items

        # Seconds per thousand on a busy machine: say so, and how far it got, rather than sit
        # silent before the URL (10,000 took 50 s at load 6 with one line at the start).
        typer.echo(f"Putting {events:,} generated events into Work...", err=True)
        lag, emu.listing_lag_s = emu.listing_lag_s, 0.0  # loaded before anyone listed: not "just written"
        items, work = generated_items(events, date.today()), emu.calendar_id("Work")
        for start in range(0, events, SEED_CHUNK):
            emu.bulk_load(work, items[start : start + SEED_CHUNK])
            if events > SEED_CHUNK:
                typer.echo(f"  {min(start + SEED_CHUNK, events):,} of {events:,}", err=True)
        emu.listing_lag_s = lag
    previous = signal.signal(signal.SIGTERM, _stopper(stop))
    try:
        _announce(emu, apple_id)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emu.stop()
    typer.echo("emulator stopped")


def _stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handler


def _announce(emu: Emulator, apple_id: str) -> None:
    typer.echo(f"iCloud emulator serving on {emu.url}")
    typer.echo(f"  partition host: {emu.partition_url}  DSID: {emu.dsid}")
    if emu.listing_lag_s:
        typer.echo(f"  listings miss what was written in the last {emu.listing_lag_s:g} s")
    for info in emu.store.calendars():
        mode = "" if info.writable else " (read-only)"
        typer.echo(f"  {info.name}{mode}: {emu.calendar_url(info.cal_id)}")
    typer.echo(f"Connect calmirror to it: calmirror connect --apple-id {apple_id} --server {emu.url}")
    typer.echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
