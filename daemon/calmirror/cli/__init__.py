"""The `calmirror` command line.

`main` builds the Typer app from one module per command group: `account_cmds` (connect,
disconnect, calendars, local-account), `accounts_cmd`, `calendar_cmds` (link, conflicts,
privacy), `sync_cmds` (sync, status, outbox), `run_cmds` (run, doctor), `availability_cmd`,
`week_cmd`, `feed_cmd` (the outbound busy feed), `feeds_cmd` (subscribed feeds),
`demo_cmd` and `emulator_cmd`. `context` opens what every command needs (home, settings,
state); `errors` is the one place failures become a line of text and an exit code;
`typer_patches` patches typer's private parts for a faster start and plainer help, only on
the typer version they are tested with.
"""
