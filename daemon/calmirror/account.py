"""Connecting, refreshing and disconnecting the iCloud account, and choosing its calendars' roles.

Glue between the remote client, the secret store and the state database; the CLI, the daemon
and the web page all call it so there is one definition of "connected". The checks of what
a person typed (`check_apple_id`, `check_password`, `check_linkable`, `check_privacy`, …)
live here too, raising the one message both the CLI and the page show.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import replace

from calmirror import credentials
from calmirror.config import Settings
from calmirror.errors import CalendarChoiceError, NotConnected, UserError
from calmirror.home import Home
from calmirror.model import Account, CalendarRow
from calmirror.remote import ICloudClient, hrefs
from calmirror.state import State

SUBSCRIPTION_HINT = (
    "is a subscription (webcal/published) calendar; subscriptions are not CalDAV calendars "
    "of your account and cannot be iCloud conflict calendars. Name one of the calendars "
    "listed by `calmirror calendars`"
)

APP_PASSWORD_HELP = (
    "iCloud needs an app-specific password (like abcd-efgh-ijkl-mnop), not your Apple ID "
    "password: make one at https://account.apple.com -> Sign-In and Security -> "
    "App-Specific Passwords"
)
NOT_AN_APP_PASSWORD = (
    "this does not look like an app-specific password (xxxx-xxxx-xxxx-xxxx); trying anyway. " + APP_PASSWORD_HELP
)
DETAILS = ("full", "busy")


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
    """The CalDAV server URL as the client will take it (its own words when it would not)."""
    hrefs.canonical_url(server)


class AlreadyConnected(UserError):
    def __init__(self, apple_id: str) -> None:
        super().__init__(
            f"{apple_id} is already connected; `calmirror connect --again` checks it again, follows iCloud "
            "to a new server and takes a new app-specific password, keeping links, conflicts and the outbox"
        )


def connect(
    home: Home, settings: Settings, state: State, apple_id: str, password: str, server: str
) -> list[CalendarRow]:
    """Validate the credentials by discovery and listing, then store them. Nothing is
    stored when any step fails."""
    existing = state.account()
    if existing and existing.apple_id.lower() == apple_id.lower():
        raise AlreadyConnected(apple_id)
    if existing:
        raise UserError(f"{existing.apple_id} is connected; run `calmirror disconnect` before connecting {apple_id}")
    client = ICloudClient(server, apple_id, password, timeout=(10.0, settings.icloud.timeout))
    try:
        found = client.discover()
        calendars = client.list_calendars(found.home_url)
    finally:
        client.close()
    if not any(c.is_event_calendar for c in calendars):
        raise UserError(
            f"{apple_id} has no event (VEVENT) calendar in iCloud; create one in the Calendar app, then connect again"
        )
    credentials.store_icloud_password(home, apple_id, password, settings.icloud.credential)
    state.set_account(Account(apple_id, server, found.principal_url, found.home_url, time.time()))
    state.set_calendars(calendars)
    state.set_meta("health", {"state": "ok", "since": time.time(), "not_before": 0})
    return calendars


def reconnect(home: Home, settings: Settings, state: State, password: str | None) -> tuple[list[CalendarRow], bool]:
    """Validate again and rediscover from the server URL, keeping links, conflicts and the
    outbox; `password` replaces the stored one (None keeps it). Returns the calendars and
    whether the home moved. Nothing is stored when any step fails."""
    current = state.account()
    if current is None:
        raise NotConnected
    secret = password or credentials.load_icloud_password(home, current.apple_id, settings.icloud.credential)
    client = ICloudClient(current.server, current.apple_id, secret, timeout=(10.0, settings.icloud.timeout))
    try:
        found = client.discover()
        calendars = client.list_calendars(found.home_url)
    finally:
        client.close()
    if password is not None:
        credentials.store_icloud_password(home, current.apple_id, password, settings.icloud.credential)
    moved = found.home_url != current.home_url
    state.move_home(replace(current, principal_url=found.principal_url, home_url=found.home_url), calendars)
    state.set_meta("health", {"state": "ok", "since": time.time(), "not_before": 0})
    return calendars, moved


def rediscover(client: ICloudClient, state: State) -> bool:
    """Ask the server URL (the front door) for the home again with `client`; when it names
    another home, move the stored URLs there. Returns whether it moved."""
    current = state.account()
    if current is None:
        raise NotConnected
    found = client.discover()
    if found.home_url == current.home_url:
        return False
    calendars = client.list_calendars(found.home_url)
    state.move_home(replace(current, principal_url=found.principal_url, home_url=found.home_url), calendars)
    return True


def client_for(home: Home, settings: Settings, state: State) -> ICloudClient:
    account = state.account()
    if account is None:
        raise NotConnected
    password = credentials.load_icloud_password(home, account.apple_id, settings.icloud.credential)
    return ICloudClient(account.server, account.apple_id, password, timeout=(10.0, settings.icloud.timeout))


def refresh_calendars(client: ICloudClient, state: State) -> list[CalendarRow]:
    account = state.account()
    if account is None:
        raise NotConnected
    calendars = client.list_calendars(account.home_url)
    state.set_calendars(calendars)
    return calendars


def disconnect(home: Home, settings: Settings, state: State) -> str | None:
    account = state.account()
    if account is None:
        return None
    credentials.forget_icloud_password(home, account.apple_id, settings.icloud.credential)
    state.forget_account()
    return account.apple_id


def is_subscription(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered.startswith(("webcal://", "webcals://")) or (
        lowered.startswith(("http://", "https://")) and (lowered.endswith(".ics") or "/published/" in lowered)
    )


def find_calendar(state: State, name_or_id: str) -> CalendarRow:
    if is_subscription(name_or_id):
        raise CalendarChoiceError(name_or_id, SUBSCRIPTION_HINT)
    calendars = state.calendars()
    if not calendars and state.account() is None:
        raise NotConnected
    matchers: tuple[Callable[[CalendarRow], bool], ...] = (
        lambda c: c.id == name_or_id,
        lambda c: c.url.rstrip("/") == name_or_id.rstrip("/"),
        lambda c: c.name == name_or_id,
        lambda c: c.name.lower() == name_or_id.lower(),
    )
    for match in matchers:
        hits = [c for c in calendars if match(c)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise CalendarChoiceError(
                name_or_id, "several calendars have this name; use the id from `calmirror calendars`"
            )
    close = difflib.get_close_matches(name_or_id.lower(), [c.name.lower() for c in calendars], n=1, cutoff=0.6)
    suggestion = next((c.name for c in calendars if close and c.name.lower() == close[0]), None)
    hint = f"did you mean {suggestion!r}? " if suggestion else ""
    raise CalendarChoiceError(name_or_id, f"no such iCloud calendar; {hint}`calmirror calendars` lists them")


def check_linkable(cal: CalendarRow) -> None:
    if not cal.is_event_calendar:
        raise CalendarChoiceError(cal.name, "holds reminders (VTODO), not events; it cannot be linked")
    if not cal.writable:
        raise CalendarChoiceError(
            cal.name,
            "is read-only (shared with you without write access); it can be a conflict calendar but not the linked one",
        )


def check_conflict(cal: CalendarRow) -> None:
    if not cal.is_event_calendar:
        raise CalendarChoiceError(cal.name, "holds reminders (VTODO), not events; it cannot block time")


def check_details(details: str) -> None:
    if details not in DETAILS:
        raise UserError(f"details must be 'full' or 'busy', not {details!r}")


def check_privacy(cal: CalendarRow, conflicts: tuple[str, ...] | list[str]) -> None:
    """Only a conflict calendar is copied, so only its copies' details can be chosen."""
    if cal.id not in conflicts:
        raise CalendarChoiceError(
            cal.name,
            f"is not a conflict calendar, so nothing of it is copied; run `calmirror conflicts add {cal.name!r}` first",
        )


def role(settings: Settings, cal: CalendarRow) -> str:
    if cal.id == settings.icloud.linked:
        return "linked"
    if cal.id in settings.icloud.conflicts:
        return "conflict"
    return "none"
