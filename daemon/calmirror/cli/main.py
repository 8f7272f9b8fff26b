"""`calmirror`: the Typer app, its global options, its commands under the headings the help shows,
and the entry point, which builds only the command a process runs and makes usage errors one line."""

from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.main
import typer.models

from calmirror import __version__, home, logs
from calmirror.cli import (
    account_cmds,
    accounts_cmd,
    availability_cmd,
    calendar_cmds,
    demo_cmd,
    emulator_cmd,
    feed_cmd,
    feeds_cmd,
    run_cmds,
    sync_cmds,
    typer_patches,
    week_cmd,
)
from calmirror.cli.context import Ctx
from calmirror.cli.errors import guarded

app = typer.Typer(
    name="calmirror",
    help="Keep a local CalDAV system calendar and Apple iCloud Calendar in step.",
    invoke_without_command=True,  # bare `calmirror` prints the help (exit 0) in `main`
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


typer_patches.apply()


DAYS_BACK = re.compile(r"-\d+d")


def _one_line_usage_error(error: typer.TyperException) -> None:
    """A usage mistake (a missing or unknown option, a bad value) is one line on stderr, as
    every other failure is; typer draws a usage line, a hint and a boxed message instead."""
    if type(error).__name__ == "NoArgsIsHelpError":  # typer has printed the help already
        return
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        where = f"; see `{ctx.command_path} --help`"
    else:  # a value missing after an option is found before any context: name the command typed
        name = _command_name(sys.argv[1:])
        where = f"; see `calmirror {name + ' ' if name else ''}--help`"
    message = getattr(error, "format_message", lambda: str(error))()
    days_back = next((arg for arg in sys.argv[1:] if DAYS_BACK.fullmatch(arg)), None)
    if type(error).__name__ == "NoSuchOption" and days_back:
        # `week -3d` is a day as `week` and `--from` take it, but it reads as an option.
        command = ctx.command_path if ctx is not None else "calmirror week"
        where = f"; a day back is written after `--`: `{command} -- {days_back}`"
    sys.stderr.write(f"calmirror: {message.rstrip('.')}{where}\n")


def _invoke() -> None:
    """The app outside typer's standalone mode, which would import its rich help and error
    formatting (rich's markdown, syntax and traceback modules, a tenth of a second of CPU)
    for every command just to be able to draw a usage error; only `--help` draws with it."""
    try:
        code = _for_command(sys.argv)(standalone_mode=False, prog_name="calmirror")  # also under `python -m calmirror`
    except typer.TyperException as error:  # click's usage and parameter errors
        _one_line_usage_error(error)
        raise SystemExit(error.exit_code) from None
    except typer.Abort:  # end of input at a prompt
        sys.stderr.write("Aborted.\n")
        raise SystemExit(1) from None
    if isinstance(code, int) and code:  # `typer.Exit(n)` and Ctrl-C (130) come back as a number
        raise SystemExit(code)


def _for_command(argv: list[str]) -> typer.Typer:
    """The app with only the command `argv` names (or its group, for `outbox list`): typer
    builds every command's parameters from its signature before it runs one, a third of the
    CPU of a `calmirror sync` after its imports. The root's help, a bare `calmirror` and a name
    it does not know (whose error suggests the nearest) get every command, and so does every
    command when typer is not one this was tested with (`typer_patches`)."""
    name = _command_name(argv[1:])
    if name is None or not typer_patches.applied("only the command run is built"):
        return app
    commands = [c for c in app.registered_commands if (c.name or _command_of(c)) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        return app
    lean = copy.copy(app)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean


def _command_of(command: typer.models.CommandInfo) -> str | None:
    return None if command.callback is None else typer.main.get_command_name(command.callback.__name__)


def _command_name(args: list[str]) -> str | None:
    """The first word after the root's options; None when the root itself is asked for."""
    words = iter(args)
    for word in words:
        if word in ("-h", "--help", "--version"):
            return None
        if word == "--home":
            next(words, None)  # its value
        elif not word.startswith("-"):
            return word
    return None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"calmirror {__version__}")
        raise typer.Exit


@app.callback()
def main(
    ctx: typer.Context,
    home_dir: Annotated[
        Path | None,
        typer.Option("--home", help="Keep config, state, store and secrets in this folder (or set CALMIRROR_HOME)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    os.umask(0o077)  # calendars, state and secrets are private: every file we create is 0600
    ctx.obj = Ctx(home=home.resolve(home_dir), verbose=verbose)
    logs.setup("warning", verbose, summarised=True)  # commands print their own summaries; `run` logs at info
    if verbose and (note := typer_patches.note()):
        typer.echo(note, err=True)
    ctx.call_on_close(ctx.obj.close)


account_cmds.register(app)
calendar_cmds.register(app)
sync_cmds.register(app)
run_cmds.register(app)
run_cmds.register_doctor(app)
demo_cmd.register(app)
availability_cmd.register(app)
week_cmd.register(app)
app.add_typer(emulator_cmd.app, name="emulator", help="Run the bundled iCloud emulator.")
app.add_typer(feed_cmd.app, name="feed")
app.add_typer(accounts_cmd.app, name="accounts")
app.add_typer(feeds_cmd.app, name="feeds")

# The root's help in the order a newcomer meets the commands, under headings: typer lists them
# as the modules registered them (connect, disconnect, calendars, … demo twelfth, conflicts
# after week), one panel of nineteen. Within a panel typer puts groups after commands.
PANELS = {
    "Try it, then set up": ("demo", "connect", "calendars", "link", "conflicts", "privacy"),
    "Keep in step and check": ("run", "sync", "status", "local-account", "doctor", "outbox"),
    "Your time": ("availability", "week"),
    "More": ("accounts", "feeds", "feed", "disconnect", "emulator"),
}


def _arrange(typer_app: typer.Typer) -> None:
    order = [name for names in PANELS.values() for name in names]
    panel_of = {name: panel for panel, names in PANELS.items() for name in names}
    for command in typer_app.registered_commands:
        command.rich_help_panel = panel_of.get(command.name or _command_of(command) or "", "More")
    for group in typer_app.registered_groups:
        group.rich_help_panel = panel_of.get(group.name or "", "More")
    typer_app.registered_commands.sort(key=lambda c: order.index(n) if (n := c.name or _command_of(c)) in order else 99)
    typer_app.registered_groups.sort(key=lambda g: order.index(g.name) if g.name in order else 99)


_arrange(app)


def run() -> None:
    verbose = [False]

    def _main() -> None:
        verbose[0] = "--verbose" in sys.argv or "-v" in sys.argv
        _invoke()

    guarded(_main, lambda: verbose[0])
