"""Where secrets live: the iCloud app-specific password and the local server's account.

The iCloud password is never in the config file, on a command line or in a log. It is
kept in a 0600 file under the home's secrets folder, or read from a systemd credential
(`LoadCredential=icloud-password:…`, found in $CREDENTIALS_DIRECTORY), or from the
system keyring when the `keyring` package is installed and configured.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from calmirror.errors import CredentialsError
from calmirror.home import Home, write_private

ICLOUD_FILE = "icloud-password"
LOCAL_FILE = "local-account.json"
SYSTEMD_NAME = "icloud-password"
KEYRING_SERVICE = "calmirror"
APP_PASSWORD_SHAPE = re.compile(r"^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$")
LOCAL_USER = "calmirror"


def looks_like_app_password(password: str) -> bool:
    return bool(APP_PASSWORD_SHAPE.match(password))


@dataclass(frozen=True)
class LocalAccount:
    username: str
    password: str

    def __repr__(self) -> str:  # keep the secret out of any accidental log line
        return f"LocalAccount(username={self.username!r}, password='***')"


def _read_secret(path: Path) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CredentialsError(f"{path}: secret missing; run `calmirror connect --again`") from None
    except PermissionError:
        raise CredentialsError(f"{path}: cannot read the secret (permission denied)") from None


def secret_name(account: str = "") -> str:
    """The file (and systemd credential) name of an account's password: each account keeps
    its own, the first one under the name it always had."""
    return f"{ICLOUD_FILE}-{account}" if account else ICLOUD_FILE


def _keyring_user(apple_id: str, account: str) -> str:
    return f"{account}:{apple_id}" if account else apple_id


def store_icloud_password(home: Home, apple_id: str, password: str, backend: str = "file", account: str = "") -> None:
    if backend == "keyring":
        _keyring().set_password(KEYRING_SERVICE, _keyring_user(apple_id, account), password)
        return
    if backend == "systemd":
        # systemd credentials are provisioned by the administrator; nothing to write.
        return
    home.ensure()
    write_private(home.secrets_dir / secret_name(account), password + "\n")


def load_icloud_password(home: Home, apple_id: str, backend: str = "file", account: str = "") -> str:
    name = secret_name(account)
    if backend == "systemd" or (
        backend == "file" and os.environ.get("CREDENTIALS_DIRECTORY") and not (home.secrets_dir / name).exists()
    ):
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise CredentialsError(
                "icloud.credential is 'systemd' but $CREDENTIALS_DIRECTORY is not set; "
                f"add LoadCredential={name}:<file> to the unit"
            )
        return _read_secret(Path(directory) / name)
    if backend == "keyring":
        value = _keyring().get_password(KEYRING_SERVICE, _keyring_user(apple_id, account))
        if not value:
            raise CredentialsError(f"no password for {apple_id} in the keyring; run `calmirror connect --again`")
        return str(value)
    return _read_secret(home.secrets_dir / name)


def forget_icloud_password(home: Home, apple_id: str, backend: str = "file", account: str = "") -> None:
    if backend == "keyring":
        with contextlib.suppress(Exception):
            _keyring().delete_password(KEYRING_SERVICE, _keyring_user(apple_id, account))
    (home.secrets_dir / secret_name(account)).unlink(missing_ok=True)


class _Keyring(Protocol):
    """The three calls made of the optional `keyring` package (it is not a dependency)."""

    def get_password(self, service_name: str, username: str) -> str | None: ...
    def set_password(self, service_name: str, username: str, password: str) -> None: ...
    def delete_password(self, service_name: str, username: str) -> None: ...


def _keyring() -> _Keyring:
    try:
        import keyring
    except ImportError:
        raise CredentialsError(
            "icloud.credential is 'keyring' but the keyring package is not installed; "
            'pip install keyring, or use credential = "file"'
        ) from None
    return cast(_Keyring, keyring)


def local_account(home: Home) -> LocalAccount:
    """The local server's login, generated once at first start."""
    path = home.secrets_dir / LOCAL_FILE
    if path.exists():
        try:
            data = json.loads(_read_secret(path))
            return LocalAccount(username=str(data["username"]), password=str(data["password"]))
        except (ValueError, KeyError, TypeError):
            raise CredentialsError(f"{path}: damaged; delete it to generate a new local password") from None
    home.ensure()
    account = LocalAccount(username=LOCAL_USER, password=secrets.token_urlsafe(18))
    write_private(path, json.dumps({"username": account.username, "password": account.password}))
    return account
