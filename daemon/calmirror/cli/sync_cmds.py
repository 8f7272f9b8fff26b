"""sync, status, outbox."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from calmirror import control
from calmirror.cli import feeds_cmd
from calmirror.cli.context import age, console, ctx_of, err_console, print_json
from calmirror.errors import UserError
from calmirror.model import PRIMARY_SPELLING, account_of

if TYPE_CHECKING:
    from calmirror.engine import Engine
    from calmirror.remote import ICloudClient

outbox_app = typer.Typer(help="Inspect and retry appointments waiting to reach iCloud.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def sync(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        now: Annotated[bool, typer.Option("--now", help="Ask the running daemon to sync at once.")] = False,
        accept_empty: Annotated[
            list[str] | None,
            typer.Option("--accept-empty", help="Apply an emptied iCloud calendar or feed to its mirror (repeatable)."),
        ] = None,
    ) -> None:
        """One pass: mirror every conflict calendar and feed, and push waiting appointments."""
        from calmirror import calendar_choice
        from calmirror.engine import Engine

        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made
        if now and control.signal_daemon(c.home.pid_file, signal.SIGUSR1):
            if json_out:
                print_json({"asked_daemon": True, "pid": control.read_pid(c.home.pid_file)})
            else:
                console.print("Asked the running daemon to sync now.")
            return
        if now:  # it synced here without a word, as if a daemon had been asked
            err_console.print("No daemon runs for this home (`calmirror run`); syncing here instead.", markup=False)
        feed_names = {f.name for f in c.state.feeds()}
        connected = c.state.account() is not None
        if not connected and not feed_names:
            calendar_choice.find_calendar(c.state, "")  # raises NotConnected
        wanted = accept_empty or []
        accepted = frozenset(calendar_choice.find_calendar(c.state, n).id for n in wanted if n not in feed_names)
        chosen = bool(c.settings.icloud.conflicts or c.settings.icloud.linked)
        if not chosen and not feed_names:
            raise UserError(
                "no conflict or linked calendar chosen; run `calmirror link CALENDAR` or "
                "`calmirror conflicts add CALENDAR`"
            )
        reports: list[Any] = []
        pushes: list[Any] = []
        if connected and chosen:
            engine = Engine(c.home, c.settings, c.state)
            client = engine.client()
            try:
                reports = _with_progress(engine, client, accepted, show=not json_out and console.is_terminal)
                pushes = engine.push_pass(client)
            finally:
                client.close()
        feed_reports = feeds_cmd.poll_all(c, [], frozenset(n for n in wanted if n in feed_names))
        failed = [r for r in reports if r.error] + [r for r in feed_reports if r.error]
        if json_out:
            print_json(
                {
                    "calendars": [r.as_dict() for r in reports],
                    "pushed": [p.__dict__ for p in pushes],
                    "feeds": [r.__dict__ for r in feed_reports],
                }
            )
        else:
            for r in [*reports, *feed_reports]:
                console.print(r.summary())
            if pushes:
                ok = sum(1 for p in pushes if p.ok)
                console.print(
                    f"Pushed {ok} appointment change(s) to iCloud"
                    + (f", {len(pushes) - ok} to retry" if ok < len(pushes) else "")
                )
        if failed:
            if not json_out:
                kinds = "calendars and feeds" if feed_reports and reports else "feeds" if feed_reports else "calendars"
                tried = len(reports) + len(feed_reports)
                err_console.print(
                    f"calmirror: {len(failed)} of {tried} {kinds} could not be synced (above); what was synced "
                    "is kept, and the next `calmirror sync` (or the running daemon) tries again",
                    markup=False,
                )
            raise typer.Exit(4)

    @app.command("status")
    def status_cmd(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        clear_version_conflicts: Annotated[
            bool,
            typer.Option(
                "--clear-version-conflicts",
                help="Forget the recorded version conflicts (appointments changed both here and in iCloud, "
                "whose overridden versions status keeps) once you have looked at them.",
            ),
        ] = False,
    ) -> None:
        """Local URL, iCloud connection, mirrors, outbox, guard warnings and recent errors."""
        from calmirror import status

        c = ctx_of(ctx)
        c.require_home()
        if clear_version_conflicts:
            cleared = c.state.clear_conflicts()
            if json_out:
                print_json({"cleared_version_conflicts": cleared})
            else:
                console.print(f"Forgot {cleared} version conflict(s); the appointments themselves are unchanged.")
            return
        data = status.gather(c.home, c.settings, c.state)
        if json_out:
            print_json(data)
            return
        _print_status(data)

    @outbox_app.command("retry")
    def outbox_retry(ctx: typer.Context) -> None:
        """Queue failed appointments again."""
        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made and answered from
        count = c.state.requeue_failed()
        control.signal_daemon(c.home.pid_file, signal.SIGUSR1)
        console.print(f"Re-queued {count} failed appointment(s).")

    @outbox_app.command("list")
    def outbox_list(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show appointments waiting for iCloud or failed."""
        c = ctx_of(ctx)
        c.require_home()  # a mistyped --home is said, never made and answered from
        rows: list[dict[str, Any]] = [
            {
                "uid": r.uid,
                "state": r.state,
                "attempts": r.attempts,
                "next_attempt": r.next_attempt,
                "last_error": r.last_error,
            }
            for r in c.state.outbox()
        ]
        if json_out:
            print_json(rows)
            return
        table = Table()
        for col in ("UID", "State", "Attempts", "Last error"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["uid"], r["state"], str(r["attempts"]), r["last_error"] or "")
        console.print(table if rows else "The outbox is empty.")

    app.add_typer(outbox_app, name="outbox")


def _with_progress(engine: Engine, client: ICloudClient, accepted: frozenset[str], show: bool) -> list[Any]:
    if not show:
        return engine.mirror_pass(client, accept_empty=accepted)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if total < 200 and name not in tasks:
                return  # small changes need no bar
            if name not in tasks:
                tasks[name] = bar.add_task(f"Mirroring {name}", total=total)
            bar.update(tasks[name], completed=done, total=total)

        return engine.mirror_pass(client, accept_empty=accepted, progress=progress)


_KIND_WORDS = {
    "compatible": "compatible copies (same busy time, stored in a form the local server takes)",
    "withheld": "not shown to local clients (no local copy could be stored; their busy time counts)",
    "unreadable": "unreadable (not iCalendar)",
}


def _print_copy_reasons(mirrors: list[dict[str, Any]]) -> None:
    for m in mirrors:
        for kind, reasons in m["copy_reasons"].items():
            console.print(f"{m['name']}: {m['copies'][kind]} {_KIND_WORDS[kind]}:")
            for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
                console.print(f"  {count} × {reason}")
        if m["availability_incomplete"]:
            console.print(
                f"Warning: availability for {m['name']} may be incomplete: {m['copies']['unreadable']} "
                "object(s) in iCloud could not be read"
            )


def _print_status(d: dict[str, Any]) -> None:
    console.print(
        f"Local calendar: {d['local_url'] or 'not started yet'}"
        f" ({'daemon running' if d['daemon_running'] else 'daemon not running; start it with `calmirror run`'})"
    )
    if len(d["accounts"]) > 1:
        for a in d["accounts"]:
            console.print(f"Account {a['name']}: {a['apple_id']} on {a['server']}: {a['connection']['text']}")
    elif d["account"]:
        console.print(f"iCloud: {d['account']}: {d['connection']['text']}")
    else:
        console.print(f"iCloud: not connected; {d['connection']['text']}")
    if d["me"]:
        console.print(f"Invitations to you: {', '.join(d['me'])}")
    if d["linked"]["id"]:
        owner = account_of(d["linked"]["id"])
        linked_name = d["linked"]["name"] or d["linked"]["id"]
        # After `disconnect` the choice stays for the same account's return, but no name is known.
        unknown = "" if d["linked"]["name"] else " (in no connected account: connect it again or run `calmirror link`)"
        console.print(f"Linked calendar: {f'{owner}/{linked_name}' if owner else linked_name}{unknown}")
    if d["mirrors"]:
        # A problem is a whole sentence (a host, a URL, what to run): in a column of an 80-wide
        # terminal it broke into a word per line, so each one gets its own line under the table.
        table = Table(title="Mirrors", box=box.SIMPLE_HEAD, title_justify="left", collapse_padding=True)
        for col in ("Calendar", "Local", "Exact", "Compat.", "Withheld", "Unread.", "Synced"):
            table.add_column(col, no_wrap=True)
        problems: list[str] = []
        for m in d["mirrors"]:
            name = m["name"] if m["account"] in (PRIMARY_SPELLING, None) else f"{m['account']}/{m['name']}"
            emptied = "feed lists no events" if m.get("kind") == "feed" else "emptied in iCloud"
            problem = f"{emptied}; mirror kept" if m["held_empty"] else (m["last_error"] or "")
            if problem:
                problems.append(f"{name}: {problem}")
            copies = m["copies"]
            table.add_row(
                name + (" (!)" if problem else ""),
                m["local_collection"],
                str(copies["exact"]),
                str(copies["compatible"]),
                str(copies["withheld"]),
                str(copies["unreadable"]),
                age(m["last_sync_age_s"]),
            )
        console.print(table)
        for line in problems:
            console.print(f"(!) {line}")
        _print_copy_reasons(d["mirrors"])
    if d["not_mirrored_yet"]:
        waiting = ", ".join(m["name"] for m in d["not_mirrored_yet"])
        how = (
            "the running daemon mirrors them at its next pass"
            if d["daemon_running"]
            else "run `calmirror sync` or `calmirror run`"
        )
        console.print(f"Not mirrored yet: {waiting} ({how})")
    o = d["outbox"]
    oldest = f", oldest waiting {age(o['oldest_pending_age_s'])}" if o["depth"] else ""
    last = o["last_push"]
    console.print(
        f"Outbox: {o['depth']} waiting{oldest}, {len(o['failed'])} failed; last push "
        f"{age(time.time() - last['ts']) if last else 'never'}"
    )
    for f in o["failed"]:
        console.print(f"  failed {f['uid']}: {f['reason']}")
    for w in d["guard"]["warnings"]:
        console.print(f"Double booking: {w['summary']} ({w['start']} – {w['end']}) overlaps busy time")
    linked = d["linked_changes"]
    for v in linked["differing"]:
        what = "deleted in iCloud" if v["deleted_in_icloud"] else "changed in iCloud"
        hint = "; the local version stays (one-way)" if linked["mode"] == "one-way" else ""
        console.print(f"Differs: appointment {v['uid']} was {what}{hint}")
    for c in linked["conflicts"]:
        console.print(
            f"Version conflict {time.strftime('%Y-%m-%d %H:%M', time.localtime(c['ts']))}: {c['uid']}: {c['reason']} "
            "(both versions: `calmirror status --json`; `calmirror status --clear-version-conflicts` forgets them)"
        )
    if d["recent_errors"]:
        console.print("Recent errors:")
    for e in d["recent_errors"][:5]:
        console.print(f"  {time.strftime('%Y-%m-%d %H:%M', time.localtime(e['ts']))} {e['kind']}: {e['message']}")
