"""run (the daemon in the foreground)."""

from __future__ import annotations

import typer

from calmirror.cli.context import ctx_of
from calmirror.daemon import Daemon


def register(app: typer.Typer) -> None:
    @app.command()
    def run(ctx: typer.Context) -> None:
        """Run the daemon in the foreground: local server, mirror loop, push worker. Ctrl-C stops it."""
        c = ctx_of(ctx)
        from calmirror import logs

        logs.setup(c.settings.log_level, c.verbose)
        raise typer.Exit(Daemon(c.home, c.settings).run())
