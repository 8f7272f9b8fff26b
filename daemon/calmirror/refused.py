"""A refused password in the words of the server that refused it.

iCloud's advice (make an app-specific password at account.apple.com) is wrong for a further
account on a plain CalDAV server (Radicale, Xandikos, a company's server): its user gets the
server's host, the user name and the command that fixes that account. Every place a refused
password reaches a person takes its words from here: the client's 401 (and so the health
detail that `status` and the Connection page show), the outbox row, the event log, the daemon's
log and a mirror's last error.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from calmirror.errors import AuthFailed, icloud_refused_help
from calmirror.model import PRIMARY
from calmirror.state import State

ICLOUD_HOST = "icloud.com"


def identity(server: str, user: str) -> tuple[str, str]:
    """What makes two connections the same account: the user at the server's host, where any
    iCloud host (the front door or a partition) is one server."""
    host = (urlsplit(server).hostname or server).lower()
    if host == ICLOUD_HOST or host.endswith("." + ICLOUD_HOST):
        host = ICLOUD_HOST
    return host, user.strip().lower()


def is_icloud_login(server: str, user: str, name: str = PRIMARY) -> bool:
    """Whether a login is held to iCloud's rules (an Apple ID, an app-specific password): the
    first account always (the emulator stands in for iCloud), a further one only at iCloud."""
    return name == PRIMARY or identity(server, user)[0] == ICLOUD_HOST


def again(name: str) -> str:
    """The command that gives account `name` a new password."""
    return "`calmirror connect --again`" if name == PRIMARY else f"`calmirror connect --again --name {name}`"


def _host(server: str) -> str:
    return urlsplit(server).netloc or server or "the server"


def client_help(server: str, user: str, name: str) -> str:
    """What a 401 answered to this account's client says (`ICloudClient(refused_help=...)`)."""
    if is_icloud_login(server, user, name):
        return icloud_refused_help(again(name))
    return f"{_host(server)} refused the user {user!r} or its password; give its current password: run {again(name)}"


def refused_by(refused: AuthFailed, server: str, user: str, name: str, what_next: str) -> AuthFailed:
    """A 401 while connecting, in words that fit the server: iCloud's own (the app-specific
    password) for an iCloud login, plain ones for any other CalDAV server."""
    if is_icloud_login(server, user, name):
        return refused
    return AuthFailed(
        f"{_host(server)} refused the user {user!r} or its password; {what_next} (HTTP {refused.status})",
        url=refused.url,
        status=refused.status,
    )


def held_line(server: str, user: str, name: str) -> str:
    """The one line an account held by a refused password shows on its outbox rows, its
    mirrors, the event log and the daemon's log."""
    who = "iCloud" if is_icloud_login(server, user, name) else _host(server)
    of = "" if name == PRIMARY else f" of account {name}"
    return f"{who} refused the password{of}: reconnect required ({again(name)})"


def held_line_of(state: State, name: str) -> str:
    """`held_line` for account `name` as the state knows it."""
    acct = state.account(name)
    return held_line(acct.server, acct.apple_id, name) if acct else held_line("", "", name)
