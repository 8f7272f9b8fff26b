"""accounts list|remove: the connected accounts, the first one and any further ones."""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer
from rich.table import Table

from calmirror import control
from calmirror.cli.calendar_cmds import remove_mirrors
from calmirror.cli.context import console, ctx_of, print_json
from calmirror.model import account_of

app = typer.Typer(help="The connected accounts (iCloud or any CalDAV server).", no_args_is_help=True)


@app.command("list")
def accounts_list(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every account: its name, login, server, health and calendars in use."""
    from calmirror import health
    from calmirror.hrefs import host_of

    c = ctx_of(ctx)
    c.require_home()
    settings = c.settings
    rows: list[dict[str, Any]] = []
    for acct in c.state.accounts():
        in_use = [i for i in settings.icloud.conflicts if account_of(i) == acct.name]
        linked = (
            settings.icloud.linked
            if settings.icloud.linked and account_of(settings.icloud.linked) == acct.name
            else None
        )
        rows.append(
            {
                "name": acct.label,
                "apple_id": acct.apple_id,
                "server": host_of(acct.server),
                "home": host_of(acct.home_url),
                "health": health.describe(c.state, account=acct.name),
                "linked": linked,
                "conflicts": in_use,
            }
        )
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("No account is connected; run `calmirror connect --apple-id EMAIL`.")
        return
    table = Table()
    for col in ("Name", "Login", "Server", "Health", "Linked", "Conflict calendars"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["apple_id"],
            r["server"],
            r["health"]["text"],
            "yes" if r["linked"] else "",
            str(len(r["conflicts"])),
        )
    console.print(table)


@app.command("remove")
def accounts_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The account's name (as `accounts list` shows it).")],
) -> None:
    """Forget a further account and its password; its mirrors go, local appointments stay."""
    from calmirror import account

    c = ctx_of(ctx)
    c.require_home()
    acct, dropped, c._settings = account.remove_account_and_roles(c.home, c.settings, c.state, name)
    if dropped:
        remove_mirrors(c)  # only when no daemon runs: a running one prunes them on the reload below
    control.signal_daemon(c.home.pid_file, signal.SIGHUP)
    console.print(
        f"Removed account {acct.label} ({acct.apple_id})"
        + (f"; {len(dropped)} of its calendars no longer linked or mirrored" if dropped else "")
        + "; local appointments are untouched."
    )
