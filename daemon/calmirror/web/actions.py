"""What the page's forms do: the CLI's own steps (account, config_edit, the outbox), with its refusals.

Each action validates every field first and returns the errors by field name, so the page can
show each one next to its field; nothing is changed unless every field is right. Messages
come from the functions the CLI calls (`account.check_linkable`, `find_calendar`, the
remote errors through `cli.errors.message_for`), so the page and the CLI refuse alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from calmirror import account, config_edit, credentials, logs
from calmirror.availability.sources import BusySources
from calmirror.cli.errors import message_for
from calmirror.config import Settings
from calmirror.errors import AuthFailed, CalendarChoiceError, CalmirrorError, RemoteError, UserError
from calmirror.home import Home
from calmirror.state import State

log = logging.getLogger("calmirror.web")

APP_PASSWORD_SHAPE = "an app-specific password looks like xxxx-xxxx-xxxx-xxxx"


class Backend(Protocol):
    """What the page needs from the process that serves it."""

    home: Home
    state: State
    busy: BusySources

    def settings(self) -> Settings: ...

    def reload(self) -> None: ...

    def wake_push(self) -> None: ...


Errors = dict[str, str]


@dataclass(frozen=True)
class Choice:
    """The calendars form as submitted: the linked id ("" for none), ticked ids, privacy per id."""

    linked: str
    conflicts: tuple[str, ...]
    details: dict[str, str]


def _check_server(server: str) -> str | None:
    if not server.startswith(("https://", "http://")) or len(server) > 300 or any(c.isspace() for c in server):
        return "give the CalDAV server as an https:// address (iCloud's is the default)"
    return None


def connect(backend: Backend, apple_id: str, password: str, server: str) -> Errors:
    errors: Errors = {}
    if "@" not in apple_id or len(apple_id) > 254 or any(c.isspace() for c in apple_id):
        errors["apple_id"] = "enter your Apple ID, the e-mail address you sign in to iCloud with"
    if not password:
        errors["password"] = f"enter an app-specific password; {APP_PASSWORD_SHAPE}"
    elif len(password) > 200:
        errors["password"] = APP_PASSWORD_SHAPE
    if problem := _check_server(server):
        errors["server"] = problem
    if errors:
        return errors
    logs.redact(password)
    settings = backend.settings()
    try:
        account.connect(backend.home, settings, backend.state, apple_id, password, server)
    except AuthFailed as error:
        return {"password": message_for(error)}
    except RemoteError as error:
        return {"server": message_for(error)}
    except CalmirrorError as error:
        return {"apple_id": message_for(error)}
    backend.reload()
    return {}


def reconnect(backend: Backend, password: str) -> Errors:
    if not password:
        return {"new_password": f"enter the new app-specific password; {APP_PASSWORD_SHAPE}"}
    if len(password) > 200:
        return {"new_password": APP_PASSWORD_SHAPE}
    logs.redact(password)
    try:
        account.reconnect(backend.home, backend.settings(), backend.state, password)
    except CalmirrorError as error:
        return {"new_password": message_for(error)}
    backend.reload()
    return {}


def disconnect(backend: Backend) -> str | None:
    apple_id = account.disconnect(backend.home, backend.settings(), backend.state)
    backend.reload()
    return apple_id


def password_looks_wrong(password: str) -> bool:
    return bool(password) and not credentials.looks_like_app_password(password)


def choose_calendars(backend: Backend, choice: Choice) -> Errors:
    """Link, conflicts and privacy in one go, refused field by field with the CLI's words."""
    state = backend.state
    errors: Errors = {}
    known = {c.id: c for c in state.calendars()}
    if choice.linked:
        try:
            account.check_linkable(account.find_calendar(state, choice.linked))
        except UserError as error:
            errors[f"linked-{choice.linked}" if choice.linked in known else "linked"] = error.message
    for cal_id in choice.conflicts:
        try:
            account.check_conflict(account.find_calendar(state, cal_id))
        except CalendarChoiceError as error:
            errors[f"conflict-{cal_id}" if cal_id in known else "conflicts"] = error.message
    for cal_id, details in choice.details.items():
        if cal_id not in known:
            errors["conflicts"] = f"{cal_id}: no such iCloud calendar; refresh the list"
        elif details not in ("full", "busy"):
            errors[f"details-{cal_id}"] = f"details must be 'full' or 'busy', not {details!r}"
    if errors:
        return errors
    settings = backend.settings()
    file = backend.home.config_file
    conflicts = list(choice.conflicts)
    if choice.linked and choice.linked != settings.icloud.linked and choice.linked not in conflicts:
        conflicts.append(choice.linked)  # as `calmirror link`: the linked calendar blocks time too
    if choice.linked != (settings.icloud.linked or ""):
        config_edit.set_linked(file, choice.linked or None, also_conflict=False)
    if list(dict.fromkeys(conflicts)) != list(settings.icloud.conflicts):
        config_edit.set_conflicts(file, conflicts)
    for cal_id, details in choice.details.items():
        # As `calmirror privacy`: only a conflict calendar has copies whose details can be chosen.
        if cal_id in conflicts and details != settings.calendar(cal_id).details:
            config_edit.set_calendar_details(file, cal_id, details)
            state.refetch_mirror(cal_id)  # every copy is rewritten at the next pass
    backend.reload()
    return {}


def refresh_calendars(backend: Backend) -> Errors:
    try:
        client = account.client_for(backend.home, backend.settings(), backend.state)
        try:
            account.refresh_calendars(client, backend.state)
        finally:
            client.close()
    except CalmirrorError as error:
        return {"refresh": message_for(error)}
    return {}


def retry_failed(backend: Backend) -> int:
    count = backend.state.requeue_failed()
    backend.wake_push()
    return count
