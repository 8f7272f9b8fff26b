"""week: the coming seven days in the terminal, day by day, like `khal calendar`.

Printed from the same JSON the web page serves (`web.week.to_json`), so the terminal and the
page show one week. A running daemon has every calendar parsed and answers in milliseconds;
without one the week is computed here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.text import Text

from calmirror.cli.availability_cmd import say_index_build, warn_uncounted
from calmirror.cli.context import Ctx, console, ctx_of, print_json
from calmirror.errors import UserError


def register(app: typer.Typer) -> None:
    @app.command()
    def week(
        ctx: typer.Context,
        date: Annotated[
            list[str] | None,
            typer.Argument(help="First day: today, tomorrow, monday, next monday, +3d or 2026-12-07."),
        ] = None,
        slot: Annotated[
            str, typer.Option("--slots", help="Show free ranges where this length fits (30m, 1h).")
        ] = "30m",
        within: Annotated[
            str, typer.Option("--within", help="Daily hours for free time, e.g. 09:00-17:00; 00:00-24:00 for all day.")
        ] = "09:00-17:00",
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        in_process: Annotated[
            bool, typer.Option("--no-daemon", help="Read the busy index here even when the daemon runs.")
        ] = False,
    ) -> None:
        """Seven days from DATE: busy events with their calendar, and the free time between them."""
        from calmirror.availability import slots
        from calmirror.web.week import parse_day

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home would answer "nothing busy"
        zone = c.settings.availability.zone
        # The words as typed, unquoted or not: `calmirror week next monday` is one date.
        first = parse_day(" ".join(date) if date else "today", dt.datetime.now(zone).date())
        length = slots.parse_length(slot)
        hours = slots.parse_within(within)
        data = None if in_process else _ask_daemon(c, first, slot, within)
        if data is None:
            data = _compute(c, first, length, hours)
        warn_uncounted(c)
        if json_out:
            print_json(data)
            return
        render(data)


def _compute(c: Ctx, first: dt.date, length: dt.timedelta, hours: tuple[dt.time, dt.time]) -> dict[str, Any]:
    from calmirror.availability.sources import BusySources
    from calmirror.credentials import local_account
    from calmirror.local.store import LocalStore
    from calmirror.web.data import week_for
    from calmirror.web.week import to_json

    store = LocalStore(c.home.store_dir, local_account(c.home).username)
    store.ensure_base()
    busy = BusySources(store, c.state, c.settings)
    say_index_build(c, busy)
    return to_json(week_for(busy, c.state, c.settings, first, slot=length, hours=hours))


def _ask_daemon(c: Ctx, first: dt.date, slot: str, within: str) -> dict[str, Any] | None:
    """The daemon's answer, or None when no daemon runs or it cannot answer."""
    from calmirror import control

    url = c.state.get_meta("local_url")
    if not url or control.read_pid(c.home.pid_file) is None:
        return None
    from calmirror.credentials import local_account
    from calmirror.local import loopback

    acct = local_account(c.home)
    answer = loopback.ask(
        "GET",
        f"{url}.calmirror/week.json",
        params={"start": first.isoformat(), "slot": slot, "within": within},
        auth=(acct.username, acct.password),
        timeout=30,
    )
    if answer is None or answer.status != 200:
        return None
    try:
        data = answer.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) and "days" in data else None


def _clock(value: str, day: str) -> str:
    """HH:MM on `day`; 24:00 for the midnight that ends it; … for a time on another day."""
    moment, date = dt.datetime.fromisoformat(value), dt.date.fromisoformat(day)
    if moment.date() == date:
        return moment.strftime("%H:%M")
    if moment.date() == date + dt.timedelta(days=1) and moment.time() == dt.time(0):
        return "24:00"
    return "…"


def _span(item: dict[str, Any], day: str) -> str:
    return f"{_clock(item['start'], day)}–{_clock(item['end'], day)}"


def render(data: dict[str, Any]) -> None:
    """Days as headings, each event on its line with its calendar, then the free ranges."""
    if not data.get("days"):
        raise UserError("no days to show")
    first = dt.date.fromisoformat(data["first_day"])
    console.print(Text(f"Week from {first:%A %-d %B %Y} ({data['timezone']})", style="bold"))
    for day in data["days"]:
        date = dt.date.fromisoformat(day["date"])
        console.print()
        console.print(Text(f"{date:%A %-d %B}", style="bold underline"))
        for event in day["events"]:
            when = "all day    " if event["all_day"] else _span(event, day["date"]).ljust(11)
            line = Text("  ")
            line.append(when, style="red")
            line.append("  " + event["title"] + ("?" if event["tentative"] else ""))
            line.append(f"  · {event['calendar']}", style="dim")
            console.print(line)
        if not day["events"]:
            console.print(Text("  nothing busy", style="dim"))
        free = ", ".join(_span(f, day["date"]) for f in day["free"])
        console.print(Text(f"  free {free}" if free else "  no free time", style="green" if free else "yellow"))
