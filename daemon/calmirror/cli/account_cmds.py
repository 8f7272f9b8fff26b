"""connect, disconnect, calendars, local-account."""

from __future__ import annotations

import signal
import sys
from typing import Annotated, TypedDict

import typer
from rich.table import Table

from calmirror import control, logs
from calmirror.cli.calendar_cmds import remove_mirrors
from calmirror.cli.context import Ctx, console, ctx_of, err_console, print_json
from calmirror.config import ICLOUD_SERVER
from calmirror.errors import UserError
from calmirror.model import PRIMARY, PRIMARY_SPELLING, CalendarRow, account_of


def _read_password(from_stdin: bool) -> str:
    from calmirror import account

    if from_stdin:
        password = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        try:
            password = typer.prompt("App-specific password", hide_input=True).strip()
        except typer.Abort:  # Ctrl-D at the prompt: typer's own answer is "Aborted." and exit 1
            raise UserError("no password given; nothing was changed") from None
    else:
        raise UserError("no terminal to ask for the password; pipe it in with --password-stdin")
    account.check_password(password)
    return password


class CalendarPayload(TypedDict):
    """One calendar as `calendars --json` prints it and the table shows it."""

    name: str
    account: str
    id: str
    url: str
    components: list[str]
    writable: bool
    role: str
    usable_as: str
    color: str | None


def calendar_payload(cal: CalendarRow, role: str) -> CalendarPayload:
    usable = (
        "linkable"
        if cal.is_event_calendar and cal.writable
        else "conflict only"
        if cal.is_event_calendar
        else "unusable (reminders)"
    )
    return {
        "name": cal.name,
        "account": PRIMARY_SPELLING if not account_of(cal.id) else account_of(cal.id),
        "id": cal.id,
        "url": cal.url,
        "components": list(cal.components),
        "writable": cal.writable,
        "role": role,
        "usable_as": usable,
        "color": cal.color,
    }


def by_name(calendars: list[CalendarRow]) -> list[CalendarRow]:
    """As the state database lists them (`ORDER BY name`), so `connect` and `calendars` agree."""
    return sorted(calendars, key=lambda cal: cal.name)


def print_calendars(rows: list[CalendarPayload]) -> None:
    several = len({r["account"] for r in rows}) > 1
    table = Table(show_lines=False)
    for col in ("Name", "Id", "Types", "Access", "Can be", "Role"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r['account']}/{r['name']}" if several else r["name"],  # as `link` takes it: default/Team, work/Team
            r["id"],
            ",".join(r["components"]),
            "read-write" if r["writable"] else "read-only",
            r["usable_as"],
            r["role"],
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command()
    def connect(
        ctx: typer.Context,
        apple_id: Annotated[
            str | None,
            typer.Option(
                "--apple-id",
                "--user",
                help="Your Apple ID (e-mail), or the user name on another CalDAV server; not needed with --again.",
            ),
        ] = None,
        name: Annotated[
            str | None,
            typer.Option(
                "--name",
                help="A short name (like work) to connect a further account beside the first; with --again, "
                "the account to check.",
            ),
        ] = None,
        again: Annotated[
            bool,
            typer.Option(
                "--again",
                help="Check the connected account again: rediscover its iCloud server, keep links, conflicts "
                "and the outbox; with --password-stdin (or at the prompt) store a new app-specific password.",
            ),
        ] = False,
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the app-specific password from stdin.")
        ] = False,
        server: Annotated[
            str | None,
            typer.Option(
                "--server",
                help="CalDAV server URL (default: icloud.server in the config, else iCloud; any CalDAV server "
                "works); with --again, the connected account's new server URL.",
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the calendars as JSON.")] = False,
    ) -> None:
        """Check an Apple ID and app-specific password (or a CalDAV server's login), store them, list calendars."""
        from calmirror import account, calendar_choice
        from calmirror.refused import is_icloud_login

        c = ctx_of(ctx)
        if again:
            _connect_again(c, password_stdin, json_out, name, server)
            return
        if apple_id is None:
            raise UserError("give --apple-id EMAIL (or --again to check the connected account again)")
        # The config's server is the first account's, as the page's form takes it.
        server = server or (c.settings.icloud.server if name is None else ICLOUD_SERVER)
        icloud = is_icloud_login(server, apple_id, name or PRIMARY)
        if icloud:
            account.check_apple_id(apple_id)
        account.check_server(server)
        if name is not None:
            account.check_account_name(name)
        password = _read_password(password_stdin)
        logs.redact(password)
        if icloud and (warning := account.password_warning(password)):
            err_console.print(f"warning: {warning}")
        calendars = account.connect(c.home, c.settings, c.state, apple_id, password, server, name or PRIMARY)
        # In the order `calmirror calendars` lists them, not the server's.
        rows = [calendar_payload(cal, calendar_choice.role(c.settings, cal)) for cal in by_name(calendars)]
        control.signal_daemon(c.home.pid_file, signal.SIGHUP)
        if json_out:
            print_json({"apple_id": apple_id, "account": name or PRIMARY_SPELLING, "calendars": rows})
            return
        console.print(f"Connected {apple_id}" + (f" as account {name}" if name else "") + ". Calendars:")
        print_calendars(rows)
        example = f"{name}/CALENDAR" if name else "CALENDAR"
        console.print(
            f"Next: `calmirror link {example}` picks where appointments go; "
            f"`calmirror conflicts add {example}…` picks what blocks your time."
        )

    def _connect_again(c: Ctx, password_stdin: bool, json_out: bool, label: str | None, server: str | None) -> None:
        from calmirror import account, calendar_choice
        from calmirror.hrefs import host_of

        c.require_home()  # a mistyped --home is said, never made
        if c.state.account() is None:
            raise UserError("no iCloud account is connected; run `calmirror connect --apple-id EMAIL`")
        current = account.account_named(c.state, label or PRIMARY_SPELLING)
        password: str | None = None
        if password_stdin:
            password = _read_password(True)
        elif sys.stdin.isatty():
            typed = typer.prompt(
                "New app-specific password (Enter keeps the stored one)",
                default="",
                show_default=False,
                hide_input=True,
            ).strip()
            password = typed or None
        if password is not None:
            logs.redact(password)
        calendars, moved = account.reconnect(c.home, c.settings, c.state, password, current.name, server)
        control.signal_daemon(c.home.pid_file, signal.SIGHUP)
        rows = [calendar_payload(cal, calendar_choice.role(c.settings, cal)) for cal in by_name(calendars)]
        after = c.state.account(current.name)
        home_url = after.home_url if after else current.home_url
        if json_out:
            print_json({"apple_id": current.apple_id, "moved": moved, "home": home_url, "calendars": rows})
            return
        what = f"moved to {host_of(home_url)}" if moved else f"still on {host_of(home_url)}"
        if server is not None:
            what = f"asked {host_of(server)}: {what}"
        kept = "new password stored" if password is not None else "password unchanged"
        console.print(f"Checked {current.apple_id} again: calendars {what}; {kept}. Links, conflicts and outbox kept.")
        print_calendars(rows)

    @app.command()
    def disconnect(ctx: typer.Context) -> None:
        """Forget the iCloud account and its password; local appointments stay."""
        from calmirror import account

        c = ctx_of(ctx)
        if not c.home.data_dir.exists():  # nothing to forget, and no home to make for it
            console.print("No iCloud account was connected.")
            return
        apple_id = account.disconnect(c.home, c.settings, c.state)
        if apple_id is None:
            console.print("No iCloud account was connected.")
            return
        remove_mirrors(c)  # only when no daemon runs: a running one prunes them on the reload below
        control.signal_daemon(c.home.pid_file, signal.SIGHUP)
        console.print(
            f"Disconnected {apple_id}; its mirrors are removed and local appointments are untouched; "
            "the linked and conflict calendars stay chosen for when this account connects again."
        )

    @app.command()
    def calendars(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        refresh: Annotated[bool, typer.Option("--refresh/--cached", help="Ask iCloud again.")] = True,
    ) -> None:
        """List every account's calendars, what each can be used for, and its role."""
        from calmirror import account, calendar_choice

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made and answered from
        if refresh:
            account.refresh_all(c.home, c.settings, c.state)
        elif c.state.account() is None:
            calendar_choice.find_calendar(c.state, "")  # raises NotConnected
        rows = [calendar_payload(cal, calendar_choice.role(c.settings, cal)) for cal in c.state.calendars()]
        if json_out:
            print_json(rows)
        else:
            print_calendars(rows)

    @app.command("local-account")
    def local_account(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON with url, username, password.")] = False,
    ) -> None:
        """Show the URL and login any CalDAV client can use for the local calendar."""
        c = ctx_of(ctx)
        c.require_home()
        from calmirror import credentials

        acct = credentials.local_account(c.home)
        url = c.state.get_meta("local_url") or f"http://{c.settings.server.host}:{c.settings.server.port}/"
        data = {
            "url": url,
            "username": acct.username,
            "password": acct.password,
            "calendars": {
                "appointments": f"{url}{acct.username}/appointments/",
                "blocked": f"{url}{acct.username}/blocked/",
                "busy": f"{url}{acct.username}/busy/",
            },
        }
        if json_out:
            print_json(data)
            return
        console.print(f"URL:      {url}\nUsername: {acct.username}\nPassword: {acct.password}")
