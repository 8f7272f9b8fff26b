"""Connecting, refreshing and disconnecting the iCloud account (and any further account).

Glue between the remote client, the secret store and the state database; the CLI, the daemon
and the web page all call it so there is one definition of "connected". The checks of what
a person typed to connect (`check_apple_id`, `check_password`, `check_server`, …) live here
too, raising the one message both the CLI and the page show; which calendar a person means
and the role it may take are in `calendar_choice`.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from calmirror import credentials, logs
from calmirror.config import Settings
from calmirror.errors import AuthFailed, NotConnected, RemoteError, UserError, icloud_refused_help
from calmirror.health import mark_ok
from calmirror.home import Home
from calmirror.model import PRIMARY, PRIMARY_SPELLING, Account, CalendarRow, account_of, scoped_id
from calmirror.refused import ICLOUD_HOST, client_help, identity, refused_by
from calmirror.remote import hrefs
from calmirror.state import State

if TYPE_CHECKING:
    from calmirror.remote.client import ICloudClient

APP_PASSWORD_HELP = (
    "iCloud needs an app-specific password (like abcd-efgh-ijkl-mnop), not your Apple ID "
    "password: make one at https://account.apple.com → Sign-In and Security → "
    "App-Specific Passwords"
)
NOT_AN_APP_PASSWORD = (
    "this does not look like an app-specific password (xxxx-xxxx-xxxx-xxxx); trying anyway. " + APP_PASSWORD_HELP
)


def check_apple_id(apple_id: str) -> None:
    if "@" not in apple_id or len(apple_id) > 254 or any(c.isspace() for c in apple_id):
        raise UserError(f"{apple_id!r} does not look like an Apple ID (an e-mail address)")


def check_password(password: str) -> None:
    """Refuses an empty password; a password of another shape is only warned about
    (`password_warning`): iCloud decides, and its answer names the problem."""
    if not password:
        raise UserError("the password is empty; " + APP_PASSWORD_HELP)


def password_warning(password: str) -> str | None:
    return None if credentials.looks_like_app_password(password) else NOT_AN_APP_PASSWORD


def check_server(server: str) -> None:
    """The CalDAV server URL as the client will take it (its own words when it would not), as
    the user's mistake (exit 2): the client's own error for it ended `connect` with exit 1,
    which says "doctor found a problem"."""
    try:
        hrefs.canonical_url(server)
    except RemoteError as refused:
        raise UserError(refused.message) from None


ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")


class AlreadyConnected(UserError):
    def __init__(self, apple_id: str, label: str = PRIMARY_SPELLING) -> None:
        again = "`calmirror connect --again`" + ("" if label == PRIMARY_SPELLING else f" --name {label}")
        super().__init__(
            f"{apple_id} is already connected (account {label}); one connection per account: {again} checks it "
            "again, follows the server to a new home and takes a new password, keeping links, conflicts and the outbox"
        )


def check_account_name(name: str) -> None:
    if name == PRIMARY_SPELLING or not ACCOUNT_NAME.fullmatch(name):
        raise UserError(
            f"{name!r} cannot name an account: use up to 20 lower-case letters, digits and dashes "
            f"(like work), not {PRIMARY_SPELLING!r}"
        )


def account_named(state: State, label: str) -> Account:
    """The account a user named (`default` is the first one)."""
    name = PRIMARY if label == PRIMARY_SPELLING else label
    found = state.account(name)
    if found is None:
        known = ", ".join(a.label for a in state.accounts()) or "none"
        raise UserError(f"no account named {label!r} (accounts: {known}); `calmirror accounts list` shows them")
    return found


def _scoped(calendars: list[CalendarRow], name: str) -> list[CalendarRow]:
    return [replace(c, id=scoped_id(name, c.id)) for c in calendars]


def _password_key(settings: Settings, name: str) -> dict[str, str]:
    return {"backend": settings.icloud.credential, "account": name}


def check_not_connected(state: State, server: str, apple_id: str, besides: str | None = None) -> None:
    """One connection per account: the same login at the same server is refused (`besides`:
    the account being moved to `server`, which is not in the way of itself)."""
    host, user = identity(server, apple_id)
    for other in state.accounts():
        if other.name == besides:
            continue
        other_host, other_user = identity(other.server, other.apple_id)
        # An Apple ID given for iCloud is the one already connected, wherever that one's
        # server was given as (a test front door, a partition host).
        if user == other_user and host in (other_host, ICLOUD_HOST):
            raise AlreadyConnected(apple_id, other.label)


def check_account_slot(state: State, name: str) -> None:
    """Whether an account can be added under `name` (PRIMARY: as the first one)."""
    first = state.account()
    if name == PRIMARY and first:
        raise UserError(
            f"{first.apple_id} is connected; give this one a short name with --name (like --name work) "
            f"to add it as another account, or run `calmirror disconnect` first"
        )
    if name != PRIMARY:
        check_account_name(name)
        if first is None:
            raise UserError("connect the first account without --name: `calmirror connect --apple-id EMAIL`")
        if state.account(name) is not None:
            raise UserError(f"an account named {name!r} exists; choose another --name or `calmirror accounts list`")


def connect(
    home: Home, settings: Settings, state: State, apple_id: str, password: str, server: str, name: str = PRIMARY
) -> list[CalendarRow]:
    """Validate the credentials by discovery and listing, then store them (as the first
    account, or as a further one under `name`). Nothing is stored when any step fails."""
    check_not_connected(state, server, apple_id)
    check_account_slot(state, name)
    from calmirror.remote.client import ICloudClient  # requests, lxml: only when a command talks to iCloud

    # Nothing is connected yet, so a refusal's advice is this command again, not `--again`.
    retry = "`calmirror connect` again" + ("" if name == PRIMARY else f" with --name {name}")
    client = ICloudClient(
        server, apple_id, password, timeout=(10.0, settings.icloud.timeout), refused_help=icloud_refused_help(retry)
    )
    try:
        found = client.discover()
        calendars = _scoped(client.list_calendars(found.home_url), name)
    except AuthFailed as refused:
        raise refused_by(refused, server, apple_id, name, "check both and connect again") from None
    finally:
        client.close()
    if not any(c.is_event_calendar for c in calendars):
        raise UserError(
            f"{apple_id} has no event (VEVENT) calendar on {urlsplit(server).hostname}; create one, then connect again"
        )
    credentials.store_icloud_password(home, apple_id, password, **_password_key(settings, name))
    state.set_account(Account(apple_id, server, found.principal_url, found.home_url, time.time(), name))
    state.set_calendars(calendars, name)
    state.set_addresses(found.addresses, name)
    mark_ok(state, name)
    return calendars


def reconnect(
    home: Home,
    settings: Settings,
    state: State,
    password: str | None,
    name: str = PRIMARY,
    server: str | None = None,
) -> tuple[list[CalendarRow], bool]:
    """Validate again and rediscover from the server URL, keeping links, conflicts and the
    outbox; `password` replaces the stored one (None keeps it), `server` the stored server URL
    (a CalDAV server that moved; without it the account could only be disconnected, losing
    its mirrors and choices). Returns the calendars and whether the home moved. Nothing is
    stored when any step fails."""
    current = state.account(name)
    if current is None:
        raise NotConnected
    if server is not None:
        check_server(server)
        check_not_connected(state, server, current.apple_id, besides=name)
        current = replace(current, server=server)
    key = _password_key(settings, name)
    secret = password or credentials.load_icloud_password(home, current.apple_id, **key)
    from calmirror.remote.client import ICloudClient

    client = ICloudClient(current.server, current.apple_id, secret, timeout=(10.0, settings.icloud.timeout))
    try:
        found = client.discover()
        calendars = _scoped(client.list_calendars(found.home_url), name)
    except AuthFailed as refused:
        again = f"give the account's current password: `calmirror connect --again --name {name}`"
        raise refused_by(refused, current.server, current.apple_id, name, again) from None
    finally:
        client.close()
    if password is not None:
        credentials.store_icloud_password(home, current.apple_id, password, **key)
    moved = found.home_url != current.home_url
    state.move_home(replace(current, principal_url=found.principal_url, home_url=found.home_url), calendars)
    state.set_addresses(found.addresses, name)
    mark_ok(state, name)
    return calendars, moved


def rediscover(client: ICloudClient, state: State, name: str = PRIMARY) -> bool:
    """Ask the server URL (the front door) for the home again with `client`; when it names
    another home, move the stored URLs there. Returns whether it moved."""
    current = state.account(name)
    if current is None:
        raise NotConnected
    found = client.discover()
    state.set_addresses(found.addresses, name)
    if found.home_url == current.home_url:
        return False
    calendars = _scoped(client.list_calendars(found.home_url), name)
    state.move_home(replace(current, principal_url=found.principal_url, home_url=found.home_url), calendars)
    return True


def client_for(
    home: Home, settings: Settings, state: State, name: str = PRIMARY, generation: int | None = None
) -> ICloudClient:
    """A client with the account's stored password; `generation`: the account's credentials
    generation when it was loaded (`Health.generation`), so a 401 to it can be told stale."""
    account = state.account(name)
    if account is None:
        raise NotConnected
    password = credentials.load_icloud_password(home, account.apple_id, **_password_key(settings, name))
    logs.redact(password)  # whatever logs a line later, this account's password never shows
    from calmirror.remote.client import ICloudClient

    return ICloudClient(
        account.server,
        account.apple_id,
        password,
        timeout=(10.0, settings.icloud.timeout),
        refused_help=client_help(account.server, account.apple_id, name),
        generation=generation,
    )


def refresh_calendars(client: ICloudClient, state: State, name: str = PRIMARY) -> list[CalendarRow]:
    account = state.account(name)
    if account is None:
        raise NotConnected
    calendars = _scoped(client.list_calendars(account.home_url), name)
    state.set_calendars(calendars, name)
    return calendars


#: How often the daemon reads the user's addresses again (aliases change rarely; a
#: reconnect or a followed home move reads them at once).
ADDRESSES_EVERY_S = 24 * 3600.0


def refresh_addresses(client: ICloudClient, state: State, name: str = PRIMARY, *, now: float | None = None) -> bool:
    """Read the account's addresses from its principal when never read or a day old (one
    PROPFIND); returns whether they were read."""
    acct = state.account(name)
    if acct is None or not acct.principal_url:
        return False
    now = time.time() if now is None else now
    read_at = state.addresses_read_at(name)
    if read_at is not None and 0 <= now - read_at < ADDRESSES_EVERY_S:
        return False
    state.set_addresses(client.addresses(acct.principal_url), name, now=now)
    return True


def refresh_all(home: Home, settings: Settings, state: State) -> list[CalendarRow]:
    """List again the calendars of every account (each with its own connection)."""
    listed: list[CalendarRow] = []
    for acct in state.accounts():
        client = client_for(home, settings, state, acct.name)
        try:
            listed += refresh_calendars(client, state, acct.name)
        finally:
            client.close()
    return listed


def disconnect(home: Home, settings: Settings, state: State) -> str | None:
    account = state.account()
    if account is None:
        return None
    others = [a.label for a in state.accounts() if a.name != PRIMARY]
    if others:
        raise UserError(
            f"other accounts are connected ({', '.join(others)}); remove them first with "
            f"`calmirror accounts remove {others[0]}`"
        )
    credentials.forget_icloud_password(home, account.apple_id, **_password_key(settings, PRIMARY))
    state.forget_account()
    return account.apple_id


def remove_account(home: Home, settings: Settings, state: State, label: str) -> tuple[Account, list[str]]:
    """Forget a named account, its password and its calendars; returns it and the ids of its
    calendars that were links or conflicts (the caller drops them from the config)."""
    if label == PRIMARY_SPELLING:
        raise UserError("the first account is removed with `calmirror disconnect`")
    acct = account_named(state, label)
    chosen = [settings.icloud.linked or "", *settings.icloud.conflicts]
    dropped = [cal_id for cal_id in dict.fromkeys(chosen) if cal_id and account_of(cal_id) == acct.name]
    credentials.forget_icloud_password(home, acct.apple_id, **_password_key(settings, acct.name))
    state.forget_account(acct.name)
    return acct, dropped


def remove_account_and_roles(
    home: Home, settings: Settings, state: State, label: str
) -> tuple[Account, list[str], Settings]:
    """`calmirror accounts remove`: forget a named account (`remove_account`) and drop its
    calendars from the linked and conflict choices in the config. Returns the account, the
    dropped ids and the settings now in force; the mirrors go at the next prune (the
    daemon's, on the reload the caller asks for, or the caller's own)."""
    from calmirror import config_edit

    acct, dropped = remove_account(home, settings, state, label)
    if dropped:
        if settings.icloud.linked in dropped:
            settings = config_edit.set_linked(home.config_file, None, also_conflict=False)
        settings = config_edit.set_conflicts(
            home.config_file, [i for i in settings.icloud.conflicts if i not in dropped]
        )
    return acct, dropped, settings
