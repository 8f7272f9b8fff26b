"""What the page's forms do: the CLI's own steps (account, config_edit, the outbox), with its refusals.

Each action validates every field first and returns the errors by field name, so the page can
show each one next to its field; nothing is changed unless every field is right. Messages
come from the checks the CLI calls (`account.check_apple_id`, `check_password`,
`check_linkable`, `check_privacy`, `find_calendar`, …, and the remote errors through
`cli.errors.message_for`), so the page and the CLI refuse alike, in the same words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from calmirror import account, calendar_choice, config_edit, logs
from calmirror.availability.sources import BusySources
from calmirror.cli.errors import message_for
from calmirror.config import Settings
from calmirror.errors import AuthFailed, CalmirrorError, RemoteError
from calmirror.home import Home
from calmirror.model import PRIMARY, PRIMARY_SPELLING, CalendarRow
from calmirror.refused import is_icloud_login
from calmirror.state import State
from calmirror.web.http import errors_of

if TYPE_CHECKING:
    from calmirror.feeds import FeedPoller

log = logging.getLogger("calmirror.web")


class Backend(Protocol):
    """What the page needs from the process that serves it."""

    home: Home
    state: State
    busy: BusySources

    def settings(self) -> Settings: ...

    def reload(self) -> None: ...

    def wake_push(self) -> None: ...

    def wake_feeds(self) -> None: ...

    @property
    def feeds(self) -> FeedPoller: ...


Errors = dict[str, str]


@dataclass(frozen=True)
class Choice:
    """The calendars form as submitted: the linked id ("" for none), ticked ids, privacy per id."""

    linked: str
    conflicts: tuple[str, ...]
    details: dict[str, str]


def _refusal(check: Callable[..., object], *args: object) -> str | None:
    """The words a shared check (`account.check_*`) refuses `args` with, or None when it passes."""
    try:
        check(*args)
    except CalmirrorError as error:  # the server URL's check is the remote client's own
        return message_for(error)
    return None


def _as_role(state: State, name_or_id: str, check: Callable[[CalendarRow], None]) -> None:
    check(calendar_choice.find_calendar(state, name_or_id))


def _password_refused(error: AuthFailed, password: str) -> str:
    """What the terminal shows when iCloud says no: the warning about the password's shape
    (when it has another), then iCloud's refusal, a line each."""
    warning = account.password_warning(password) if password else None
    return "\n".join([f"warning: {warning}", message_for(error)] if warning else [message_for(error)])


def connect(backend: Backend, apple_id: str, password: str, server: str, name: str = "") -> Errors:
    """`calmirror connect` (with `--name` for a further account): the same checks and words,
    each under its field."""
    named = name or PRIMARY
    icloud = is_icloud_login(server, apple_id, named)
    state = backend.state
    errors = errors_of(
        {
            "name": _refusal(account.check_account_slot, state, named) if name or state.account() else None,
            "apple_id": _refusal(account.check_apple_id, apple_id)
            if icloud
            else (None if apple_id else "enter the user name of your account on that server"),
            "password": _refusal(account.check_password, password),
            "server": _refusal(account.check_server, server),
        }
    )
    if not errors:
        errors = errors_of({"apple_id": _refusal(account.check_not_connected, state, server, apple_id)})
    if errors:
        return errors
    logs.redact(password)
    try:
        account.connect(backend.home, backend.settings(), state, apple_id, password, server, named)
    except AuthFailed as error:
        return {"password": _password_refused(error, password) if icloud else message_for(error)}
    except RemoteError as error:
        return {"server": message_for(error)}
    except CalmirrorError as error:
        return {"apple_id": message_for(error)}
    backend.reload()
    return {}


def reconnect(backend: Backend, password: str, label: str = PRIMARY_SPELLING) -> Errors:
    """`calmirror connect --again [--name NAME]`: check again and rediscover; an empty
    password keeps the stored one, as Enter does at the CLI's prompt."""
    if password:
        logs.redact(password)
    icloud = True
    try:
        acct = account.account_named(backend.state, label)
        icloud = is_icloud_login(acct.server, acct.apple_id, acct.name)
        account.reconnect(backend.home, backend.settings(), backend.state, password or None, acct.name)
    except AuthFailed as error:
        return {"new_password": _password_refused(error, password) if icloud else message_for(error)}
    except CalmirrorError as error:
        return {"new_password": message_for(error)}
    backend.reload()
    return {}


def disconnect(backend: Backend, label: str = PRIMARY_SPELLING) -> tuple[str | None, Errors]:
    """`calmirror disconnect` for the first account, `calmirror accounts remove NAME` for a
    further one: its password and calendars are forgotten, its mirrors go at the reload."""
    try:
        if label == PRIMARY_SPELLING:
            apple_id = account.disconnect(backend.home, backend.settings(), backend.state)
        else:
            acct, _, _ = account.remove_account_and_roles(backend.home, backend.settings(), backend.state, label)
            apple_id = acct.apple_id
    except CalmirrorError as error:
        return None, {"disconnect": message_for(error)}
    backend.reload()
    return apple_id, {}


def choose_calendars(backend: Backend, choice: Choice) -> Errors:
    """Link, conflicts and privacy in one go, refused field by field with the CLI's words
    (`link`, `conflicts add`, `privacy`); nothing changes unless every field is right."""
    state = backend.state
    settings = backend.settings()
    known = {c.id: c for c in state.calendars()}
    errors: Errors = {}

    def refuse(field: str, problem: str | None) -> None:
        if problem:
            errors[field] = problem

    if choice.linked:
        where = f"linked-{choice.linked}" if choice.linked in known else "linked"
        refuse(where, _refusal(_as_role, state, choice.linked, calendar_choice.check_linkable))
    for cal_id in choice.conflicts:
        where = f"conflict-{cal_id}" if cal_id in known else "conflicts"
        refuse(where, _refusal(_as_role, state, cal_id, calendar_choice.check_conflict))
    conflicts = list(choice.conflicts)
    if choice.linked and choice.linked != settings.icloud.linked and choice.linked not in conflicts:
        conflicts.append(choice.linked)  # as `calmirror link`: the linked calendar blocks time too
    for cal_id, details in choice.details.items():
        if cal_id not in known:
            refuse("conflicts", _refusal(calendar_choice.find_calendar, state, cal_id))
        elif details != settings.calendar(cal_id).details:  # what `calmirror privacy` would be asked
            refuse(
                f"details-{cal_id}",
                _refusal(calendar_choice.check_details, details)
                or _refusal(calendar_choice.check_privacy, known[cal_id], conflicts),
            )
    if errors:
        return errors
    file = backend.home.config_file
    if choice.linked != (settings.icloud.linked or ""):
        config_edit.set_linked(file, choice.linked or None, also_conflict=False)
    if list(dict.fromkeys(conflicts)) != list(settings.icloud.conflicts):
        config_edit.set_conflicts(file, conflicts)
    for cal_id, details in choice.details.items():
        if details != settings.calendar(cal_id).details:  # a conflict calendar's, checked above
            config_edit.set_calendar_details(file, cal_id, details)
            state.refetch_mirror(cal_id)  # every copy is rewritten at the next pass
    backend.reload()
    return {}


def refresh_calendars(backend: Backend) -> Errors:
    """`calmirror calendars`: every account listed again, each over its own connection."""
    try:
        account.refresh_all(backend.home, backend.settings(), backend.state)
    except CalmirrorError as error:
        return {"refresh": message_for(error)}
    return {}


def retry_failed(backend: Backend) -> int:
    count = backend.state.requeue_failed()
    backend.wake_push()
    return count
