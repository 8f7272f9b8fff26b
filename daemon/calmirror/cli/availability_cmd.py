"""availability: busy intervals or free slots across appointments, blocked slots and mirrors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from calmirror.cli.context import Ctx, console, ctx_of, err_console, print_json
from calmirror.errors import UserError

if TYPE_CHECKING:
    from calmirror.availability.sources import BusySources


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'") from None


NOTED_BUILD = 1000  # mirrored events from which an index build takes long enough to say so
# What `slots.parse_time` suggests, with the words `week` takes in front.
DAY_WORDS = "use now, today, tomorrow, monday, +3d, "


def when(text: str, zone: ZoneInfo, now: datetime, what: str) -> datetime:
    """An instant from what a person types: `now`, a day as `week` takes it (`today`,
    `monday`, `+3d`: the start of that day in `zone`) or an ISO date or date-time."""
    from calmirror.availability import slots
    from calmirror.web.week import BadDate, parse_day

    if text.strip().lower() == "now":
        return now
    try:
        return slots.parse_time(text, zone, what)
    except slots.BadInput as refused:
        try:
            day = parse_day(text, now.astimezone(zone).date())
        except BadDate:
            raise slots.BadInput(what, text, refused.problem.replace("use ", DAY_WORDS, 1)) from None
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def say_index_build(c: Ctx, sources: BusySources) -> None:
    """On stderr, before a long wait: the first question after an upgrade (or a change of
    time zone) rebuilds the busy index, seconds per thousand events, and said nothing."""
    why = sources.upkeep.build_due()
    events = sum(row.item_count or 0 for row in c.state.mirrors())
    if why and events >= NOTED_BUILD:
        err_console.print(f"The busy index is being {why}: {events:,} mirrored events, once.", markup=False)


def warn_uncounted(c: Ctx) -> None:
    """Say on stderr what busy time is not counted yet: on a new home `availability` answered
    "Busy: none" (and `week` "nothing busy") with no account connected, no conflict calendar
    chosen or none mirrored yet, which reads as "iCloud says you are free"."""
    line = uncounted(c)
    if line:
        err_console.print(f"warning: {line}", markup=False)


def uncounted(c: Ctx) -> str | None:
    feeds = c.state.feeds()
    if not c.state.accounts() and not feeds:
        return (
            "no account is connected, so only local appointments and blocked slots count; "
            "run `calmirror connect --apple-id EMAIL`"
        )
    if not c.settings.icloud.conflicts and not feeds:
        return (
            "no conflict calendar is chosen, so only local appointments and blocked slots count; "
            "run `calmirror conflicts add NAME` (`calmirror calendars` lists them)"
        )
    names = c.state.calendar_names()
    waiting = [
        names.get(cal_id, cal_id)
        for cal_id in c.settings.icloud.conflicts
        if getattr(c.state.mirror(cal_id), "last_sync", None) is None
    ]
    if waiting:
        are, their = ("is", "its") if len(waiting) == 1 else ("are", "their")
        return (
            f"{', '.join(waiting)} {are} not mirrored yet, so {their} events do not count; "
            "run `calmirror sync`, or `calmirror run` to keep them in step"
        )
    return None


def register(app: typer.Typer) -> None:
    @app.command()
    def availability(
        ctx: typer.Context,
        start: Annotated[
            str,
            typer.Option("--from", help="Start: now, today, tomorrow, monday, +3d, 2026-12-01 or 2026-12-01T09:00."),
        ] = "now",
        end: Annotated[
            str | None,
            typer.Option("--to", help="End (exclusive), written as --from is; default: 7 days after --from."),
        ] = None,
        tz: Annotated[
            str | None, typer.Option("--tz", help="Zone for input and output (default: availability.timezone).")
        ] = None,
        slot: Annotated[
            str | None,
            typer.Option("--slots", help="Print free slots of this length (30m, 1h, 1h30m) instead of busy time."),
        ] = None,
        within: Annotated[str | None, typer.Option("--within", help="Daily hours for slots, e.g. 09:00-17:00.")] = None,
        days: Annotated[str | None, typer.Option("--days", help="Weekdays for slots, e.g. mon-fri.")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        in_process: Annotated[
            bool,
            typer.Option("--no-daemon", help="Read the busy index here even when the daemon runs."),
        ] = False,
    ) -> None:
        """Busy time (or free slots) across appointments, blocked slots and every iCloud mirror."""
        from calmirror import control  # heavy imports only for this command
        from calmirror.availability import slots
        from calmirror.availability.sources import BusySources, ask_daemon
        from calmirror.credentials import local_account
        from calmirror.local.store import LocalStore

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home would answer "nothing busy"
        zone = _zone(tz or c.settings.availability.timezone)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        window_start = when(start, zone, now, "--from")
        window_end = when(end, zone, now, "--to") if end else window_start + timedelta(days=7)
        if window_end <= window_start:
            raise UserError("--to must be after --from")
        if window_end - window_start > timedelta(days=366):
            raise UserError("the window is longer than a year; ask for a shorter one")
        if not slot and (within or days):
            # They shape free slots only; busy time came back unfiltered, read as "busy mon-fri".
            given = "--within" if within else "--days"
            raise UserError(f"{given} chooses the hours of free slots: add --slots 30m (or leave {given} out)")
        length = slots.parse_length(slot) if slot else None
        hours = slots.parse_within(within) if within else None
        weekdays = slots.parse_days(days) if days else None
        acct = local_account(c.home)
        url = c.state.get_meta("local_url")
        busy = None
        if url and not in_process and control.read_pid(c.home.pid_file) is not None:
            busy = ask_daemon(url, acct.username, acct.password, window_start, window_end)
        if busy is None:
            store = LocalStore(c.home.store_dir, acct.username)
            store.ensure_base()
            sources = BusySources(store, c.state, c.settings)
            say_index_build(c, sources)
            busy = sources.busy(window_start, window_end)
        if length is None:
            rows = [{"start": s.astimezone(zone).isoformat(), "end": e.astimezone(zone).isoformat()} for s, e in busy]
            title = "Busy"
        else:
            free = slots.free_slots(busy, window_start, window_end, length, zone, hours, weekdays)
            rows = [{"start": s.astimezone(zone).isoformat(), "end": e.astimezone(zone).isoformat()} for s, e in free]
            title = f"Free {slot} slots"
        warn_uncounted(c)
        if json_out:
            print_json({"timezone": str(zone), "kind": "busy" if length is None else "free", "intervals": rows})
            return
        table = Table(title=f"{title} ({zone})")
        table.add_column("Start")
        table.add_column("End")
        for r in rows:
            table.add_row(r["start"], r["end"])
        console.print(table if rows else f"{title}: none in that window.")
