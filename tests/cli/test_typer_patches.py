"""The command line's patches of typer's private parts hold for the installed typer, give what
typer itself would, and the command line still works, one line per mistake, without them.

A typer upgrade that changes what a patch replaces fails here rather than silently: the first
test names what was left out, the second compares every absent option's value with typer's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.core
import typer.main

from calmirror.cli import main, typer_patches

# Runs the console script's entry point after `setup` has changed typer as an upgrade might.
DRIVER = (
    "import sys, typer, typer.core\n{setup}\n"
    "from calmirror.cli.main import run\nsys.argv = ['calmirror', *sys.argv[1:]]\nrun()\n"
)
NEWER_TYPER = "typer.__version__ = '0.99.0'"
RESHAPED = (
    "_old = typer.core._TyperParameter.process_value\n"
    "def process_value(self, ctx, value, source=None):\n"
    "    return _old(self, ctx, value)\n"
    "typer.core._TyperParameter.process_value = process_value\n"
    "typer.core.TyperOption.display_type_rich = lambda self, ctx, wide=False: None\n"
)


def test_every_patch_applies_to_the_installed_typer() -> None:
    """Fails on a typer whose version pyproject does not allow or whose private parts moved:
    read the new typer against `typer_patches`, then widen `TESTED` and the bound together."""
    assert typer_patches.typer_version() in typer_patches.TESTED, typer.__version__
    assert typer_patches.LEFT_OUT == []
    assert all(typer_patches.applied(name) for name in typer_patches.PATCHES)
    assert typer_patches.note() is None


def _every_command(command: typer.core._click.Command) -> list[typer.core._click.Command]:
    found = [command]
    if hasattr(command, "list_commands"):
        ctx = typer.core._click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found += _every_command(sub)
    return found


def test_an_absent_option_gets_exactly_the_value_typer_gives_it() -> None:
    """The patch skips typer's coercion for an option left out; for every optional parameter of
    every command the value (after its callback) is the one typer's own coercion makes."""
    commands = _every_command(typer.main.get_command(main.app))
    assert len(commands) > 30
    typers_own = typer_patches.REPLACED["process_value"]
    compared = 0
    for command in commands:
        ctx = typer.core._click.Context(command, info_name=command.name)
        for param in command.params:
            if not isinstance(param, typer.core._TyperParameter) or param.required:
                continue
            patched = param.process_value(ctx, None)
            own = typers_own(param, ctx, None)
            assert (type(patched), patched) == (type(own), own), (command.name, param.name)
            compared += 1
    assert compared > 40


@pytest.mark.parametrize("setup", [NEWER_TYPER, RESHAPED], ids=["newer-typer", "reshaped-typer"])
def test_without_the_patches_the_command_line_still_works(home: Path, setup: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", DRIVER.format(setup=setup), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CALMIRROR_HOME": str(home), "COLUMNS": "200"},
        )

    helped = cli("--help")
    assert helped.returncode == 0 and "availability" in helped.stdout and "sync" in helped.stdout
    assert cli("sync", "--help").returncode == 0

    mistake = cli("sync", "--no-such-option")
    assert mistake.returncode == 2
    assert mistake.stderr.splitlines() == ["calmirror: No such option: --no-such-option; see `calmirror sync --help`"]
    mistyped = cli("synk")
    assert mistyped.returncode == 2 and "Did you mean 'sync'?" in mistyped.stderr

    listed = cli("-v", "accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    (note,) = [line for line in listed.stderr.splitlines() if "typer" in line]
    assert note.startswith("calmirror: running without typer patches (") and "install typer 0.29" in note
    assert "Traceback" not in listed.stderr
