"""What every command needs: the home folder, the settings and the state database,
opened lazily so `calmirror --help` and `calmirror local-account` stay instant."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from calmirror import config, home
from calmirror.errors import HomeMissing

if TYPE_CHECKING:
    from calmirror.state import State

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class Ctx:
    home: home.Home
    verbose: bool = False
    _settings: config.Settings | None = None
    _state: State | None = field(default=None, repr=False)

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load(self.home.config_file)
        return self._settings

    def reload(self) -> config.Settings:
        self._settings = config.load(self.home.config_file)
        return self._settings

    @property
    def state(self) -> State:
        if self._state is None:
            from calmirror.state import State  # SQLite only for commands that read state

            self.home.ensure()
            self._state = State(self.home.state_db)
        return self._state

    def require_home(self) -> None:
        """For read-only commands: a home that does not exist is reported, never created."""
        if not self.home.data_dir.exists():
            raise HomeMissing(str(self.home.data_dir))

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None


def ctx_of(typer_ctx: typer.Context) -> Ctx:
    obj = typer_ctx.find_root().obj
    assert isinstance(obj, Ctx)
    return obj


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def age(seconds: float | None) -> str:
    """How long ago, as `status` and `feeds list` say it (`3m ago`, `2h ago`, `never`)."""
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"
