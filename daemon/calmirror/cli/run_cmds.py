"""run (the daemon in the foreground) and doctor (what it needs, checked)."""

from __future__ import annotations

from typing import Annotated

import typer

from calmirror.cli.context import console, ctx_of, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    def run(ctx: typer.Context) -> None:
        """Run the daemon in the foreground: local server, mirror loop, push worker. Ctrl-C stops it."""
        from calmirror.daemon import Daemon

        c = ctx_of(ctx)
        from calmirror import logs

        logs.setup(c.settings.log_level, c.verbose)
        raise typer.Exit(Daemon(c.home, c.settings).run())


def register_doctor(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Check config, credentials, every account's server, the local store, the watcher, disk and systemd."""
        from calmirror.doctor import run_checks

        c = ctx_of(ctx)
        c.require_home()
        checks = run_checks(c.home, progress=None if json_out else lambda check: console.print(check.line()))
        if json_out:
            print_json(
                [
                    {"check": k.name, "ok": k.ok, "detail": k.detail, **({"account": k.account} if k.account else {})}
                    for k in checks
                ]
            )
        if not all(k.ok for k in checks):
            raise typer.Exit(1)
