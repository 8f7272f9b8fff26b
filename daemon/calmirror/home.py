"""Where calmirror keeps its files.

`--home DIR` or `CALMIRROR_HOME` put everything (config, state DB, Radicale store, secrets)
under one folder, which is what tests, several instances and systemd's StateDirectory
need. Without either, config goes to the XDG config folder and the rest to the XDG data
folder. Folders are created 0700 and files 0600: the store holds private calendars and the
secrets folder holds passwords.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from calmirror.errors import LocalError, UserError

ENV_HOME = "CALMIRROR_HOME"


@dataclass(frozen=True)
class Home:
    config_file: Path
    data_dir: Path

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def ranges_db(self) -> Path:
        """The time-range index of the mirrors: a cache the local server checks on every query."""
        return self.data_dir / "ranges.db"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "daemon.pid"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "daemon.lock"

    def ensure(self) -> None:
        """Create the folders with private permissions, or explain why that is impossible."""
        for folder in (self.config_file.parent, self.data_dir, self.secrets_dir, self.store_dir):
            make_private_dir(folder)


def resolve(home: str | Path | None = None) -> Home:
    chosen = home if home is not None else os.environ.get(ENV_HOME) or None
    if chosen:
        root = Path(chosen).expanduser().absolute()
        if root.exists() and not root.is_dir():
            source = "--home" if home is not None else ENV_HOME
            raise UserError(f"{root} is a file; {source} needs a folder (it is created if missing)")
        return Home(config_file=root / "config.toml", data_dir=root)
    config_dir = Path(platformdirs.user_config_dir("calmirror", appauthor=False))
    data_dir = Path(platformdirs.user_data_dir("calmirror", appauthor=False))
    return Home(config_file=config_dir / "config.toml", data_dir=data_dir)


def make_private_dir(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            folder.chmod(0o700)
    except PermissionError:
        raise LocalError(
            f"{folder}: permission denied; choose another folder with --home or fix its owner and permissions"
        ) from None
    except OSError as exc:
        raise LocalError(f"{folder}: cannot create folder ({exc.strerror})") from None


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner, atomically (no window with wider permissions)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except PermissionError:
        raise LocalError(f"{path}: permission denied") from None
    except OSError as exc:
        raise LocalError(f"{path}: cannot write ({exc.strerror})") from None
