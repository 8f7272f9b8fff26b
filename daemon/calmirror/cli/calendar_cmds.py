"""link, conflicts add|remove|list, privacy."""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer
from rich.table import Table

from calmirror import control
from calmirror.cli.context import Ctx, console, ctx_of, print_json
from calmirror.local.layout import mirror_name

conflicts_app = typer.Typer(help="Choose the iCloud calendars whose events block your time.", no_args_is_help=True)


def _reload_daemon(c: Ctx) -> None:
    control.signal_daemon(c.home.pid_file, signal.SIGHUP)


def remove_mirrors(c: Ctx) -> None:
    from calmirror.local.store import LocalStore
    from calmirror.mirror import Mirror

    if control.read_pid(c.home.pid_file) is not None:
        return  # the running daemon prunes on SIGHUP, under its own store lock
    store = LocalStore(c.home.store_dir, _username(c))
    Mirror(c.state, store, c.settings).prune()


def _username(c: Ctx) -> str:
    from calmirror.credentials import local_account

    return local_account(c.home).username


def register(app: typer.Typer) -> None:
    @app.command()
    def link(
        ctx: typer.Context,
        calendar: Annotated[str, typer.Argument(help="Calendar name or id; ACCOUNT/NAME in a further account.")],
        no_conflict: Annotated[
            bool, typer.Option("--no-conflict", help="Do not also mirror it as a conflict calendar.")
        ] = False,
    ) -> None:
        """Make CALENDAR the linked iCloud calendar that receives your appointments."""
        from calmirror import calendar_choice

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made
        cal = calendar_choice.find_calendar(c.state, calendar)
        calendar_choice.check_linkable(cal)
        previous = c.settings.icloud.linked
        from calmirror import config_edit  # tomlkit, only for the commands that write config.toml

        c._settings = config_edit.set_linked(c.home.config_file, cal.id, also_conflict=not no_conflict)
        _reload_daemon(c)
        console.print(
            f"Linked calendar: {calendar_choice.address(cal)} ({cal.id})"
            + ("" if no_conflict else "; also a conflict calendar")
        )
        if previous and previous != cal.id:
            console.print(
                "Appointments pushed before stay in the previous linked calendar and keep being "
                "updated there; new ones go to this one."
            )

    @conflicts_app.command("add")
    def conflicts_add(
        ctx: typer.Context,
        calendars: Annotated[
            list[str], typer.Argument(help="Calendar names or ids; ACCOUNT/NAME in a further account.")
        ],
    ) -> None:
        """Mirror CALENDARS locally (read-only) and let their busy events block time."""
        from calmirror import calendar_choice

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made
        chosen = []
        for name in calendars:
            cal = calendar_choice.find_calendar(c.state, name)
            calendar_choice.check_conflict(cal)
            chosen.append(cal)
        ids = [*c.settings.icloud.conflicts, *(cal.id for cal in chosen)]
        from calmirror import config_edit  # tomlkit, only for the commands that write config.toml

        c._settings = config_edit.set_conflicts(c.home.config_file, ids)
        _reload_daemon(c)
        console.print("Conflict calendars: " + ", ".join(_names(c, c.settings.icloud.conflicts)))

    @conflicts_app.command("remove")
    def conflicts_remove(
        ctx: typer.Context,
        calendars: Annotated[
            list[str], typer.Argument(help="Calendar names or ids; ACCOUNT/NAME in a further account.")
        ],
    ) -> None:
        """Stop mirroring CALENDARS; their local mirrors are removed."""
        from calmirror import calendar_choice

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made
        drop = {calendar_choice.find_calendar(c.state, name).id for name in calendars}
        ids = [i for i in c.settings.icloud.conflicts if i not in drop]
        from calmirror import config_edit  # tomlkit, only for the commands that write config.toml

        c._settings = config_edit.set_conflicts(c.home.config_file, ids)
        remove_mirrors(c)
        _reload_daemon(c)
        console.print("Conflict calendars: " + (", ".join(_names(c, ids)) or "none"))

    @conflicts_app.command("list")
    def conflicts_list(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show the conflict calendars and their local mirrors."""
        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made and answered from
        names = c.state.calendar_names()  # a calendar deleted in iCloud keeps its last name
        rows: list[dict[str, Any]] = []
        for cal_id in c.settings.icloud.conflicts:
            mirror = c.state.mirror(cal_id)
            rows.append(
                {
                    "id": cal_id,
                    "name": names.get(cal_id, cal_id),
                    "linked": cal_id == c.settings.icloud.linked,
                    "local_collection": mirror_name(mirror.slug) if mirror and mirror.slug else None,
                    "details": c.settings.calendar(cal_id).details,
                    "items": mirror.item_count if mirror else 0,
                }
            )
        if json_out:
            print_json(rows)
            return
        table = Table()
        for col in ("Name", "Id", "Local calendar", "Details", "Items", "Linked"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["name"],
                r["id"],
                r["local_collection"] or "(not synced yet)",
                r["details"],
                str(r["items"]),
                "yes" if r["linked"] else "",
            )
        console.print(table)

    @app.command()
    def privacy(
        ctx: typer.Context,
        calendar: Annotated[str, typer.Argument(help="Calendar name or id; ACCOUNT/NAME in a further account.")],
        details: Annotated[str, typer.Argument(help="'full' copies everything; 'busy' keeps only times.")],
    ) -> None:
        """Choose how much of a conflict calendar is copied locally (full or busy)."""
        from calmirror import calendar_choice

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made
        calendar_choice.check_details(details)
        cal = calendar_choice.find_calendar(c.state, calendar)
        calendar_choice.check_privacy(cal, c.settings.icloud.conflicts)
        from calmirror import config_edit  # tomlkit, only for the commands that write config.toml

        c._settings = config_edit.set_calendar_details(c.home.config_file, cal.id, details)
        c.state.refetch_mirror(cal.id)  # every copy is rewritten at the next pass
        _reload_daemon(c)
        console.print(f"{cal.name}: details = {details} (applies at the next sync)")

    app.add_typer(conflicts_app, name="conflicts")


def _names(c: Ctx, ids: tuple[str, ...] | list[str]) -> list[str]:
    from calmirror import calendar_choice

    by_id = {cal.id: calendar_choice.address(cal) for cal in c.state.calendars()}
    return [by_id.get(i, i) for i in ids]
