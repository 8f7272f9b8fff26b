"""The calmirror error tree.

Every failure a user can meet is one of these, with the fields a message or a retry
decision needs. They are turned into one line of text and an exit code in exactly one
place (`calmirror.cli.errors`), so no module formats user messages itself and no
traceback or secret ever reaches a terminal.
"""

from __future__ import annotations


class CalmirrorError(Exception):
    """Base of everything calmirror raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- the user's own input -------------------------------------------------------------


class UserError(CalmirrorError):
    """Something the user can fix by changing what they typed or configured."""

    exit_code = 2


class ConfigError(UserError):
    """A config file that cannot be read, or a key with a value outside what is allowed."""

    def __init__(self, file: str, key: str | None, problem: str) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem


class NotConnected(UserError):
    def __init__(self) -> None:
        super().__init__("no iCloud account is connected; run `calmirror connect --apple-id EMAIL` first")


class CredentialsError(UserError):
    """The stored secret is missing, unreadable or has unsafe permissions."""


class CalendarChoiceError(UserError):
    """A calendar named on the command line cannot play the role asked of it."""

    def __init__(self, calendar: str, problem: str) -> None:
        super().__init__(f"{calendar}: {problem}")
        self.calendar = calendar
        self.problem = problem


# --- the remote (iCloud or any CalDAV server standing in for it) ----------------------


class RemoteError(CalmirrorError):
    """A CalDAV answer that was not what we asked for."""

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class AuthFailed(RemoteError):
    """401: wrong or revoked app-specific password. Retrying will not help.

    `generation`: the account's credentials generation the refused request was sent with
    (see `Health.failed`); None from a client made outside the daemon's connections."""

    exit_code = 3

    def __init__(
        self, message: str, *, url: str = "", status: int | None = None, generation: int | None = None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.generation = generation


def icloud_refused_help(again: str = "`calmirror connect --again`") -> str:
    """iCloud's 401 in its own terms (an app-specific password), ending in the command `again`
    that gives the account a new one; other servers' terms are in `calmirror.refused`."""
    return (
        "iCloud refused the Apple ID or app-specific password; make one at https://account.apple.com "
        f"→ Sign-In and Security → App-Specific Passwords, then run {again}"
    )


class Unavailable(RemoteError):
    """503/429 or another transient server failure; `retry_after` in seconds when the server said."""

    exit_code = 4

    def __init__(
        self, message: str, *, url: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after


class Unreachable(RemoteError):
    """DNS, connection refused, reset, timeout: the server was never heard properly."""

    exit_code = 4


class TLSFailure(Unreachable):
    """The server's certificate did not verify. Never retried blindly."""


class PreconditionFailed(RemoteError):
    """412: the ETag we held is stale, or If-None-Match found an existing object."""


class NotFound(RemoteError):
    """404 on a resource or calendar."""


class Conflict(RemoteError):
    """409: the calendar a PUT went to does not exist (deleted), or the write clashes with it."""


class Forbidden(RemoteError):
    """403: read-only calendar, or a UID already used in another calendar of the account."""


class InvalidSyncToken(RemoteError):
    """The server no longer knows our sync token; a full resync follows."""


class BadRemoteData(RemoteError):
    """A response body we could not parse (truncated, not XML, hostile XML)."""


class FeedError(RemoteError):
    """A subscribed ICS feed could not be fetched as it must be (see `remote/feed.py`)."""

    exit_code = 4


class FeedTooLarge(FeedError):
    """The feed (as sent, or once decompressed) is over the size limit; nothing of it is used."""

    def __init__(self, message: str, *, url: str, limit_bytes: int) -> None:
        super().__init__(message, url=url)
        self.limit_bytes = limit_bytes


class FeedRedirectRefused(FeedError):
    """A redirect calmirror will not follow: another scheme than http(s), http where https
    was asked, or more than the allowed number of hops."""

    def __init__(self, message: str, *, url: str, target: str, status: int | None = None) -> None:
        super().__init__(message, url=url, status=status)
        self.target = target


class FeedURLRefused(UserError):
    """A feed URL of a scheme calmirror does not fetch (file://, ftp://, plain http without
    --allow-http)."""

    def __init__(self, url: str, scheme: str, problem: str) -> None:
        super().__init__(f"{url}: {problem}")
        self.url = url
        self.scheme = scheme
        self.problem = problem


# --- this machine ---------------------------------------------------------------------


class LocalError(CalmirrorError):
    """The local store, state database or file system failed."""

    exit_code = 5


class AlreadyRunning(LocalError):
    """Another daemon holds this home's lock."""

    def __init__(self, home: str, pid: int | None, url: str) -> None:
        detail = ", ".join(x for x in (f"pid {pid}" if pid else "", f"URL {url}" if url else "") if x)
        super().__init__(
            f"calmirror is already running for {home}"
            + (f" ({detail})" if detail else "")
            + "; it keeps running: use that one, or stop it first to start another"
        )
        self.home = home
        self.pid = pid
        self.url = url


class HomeMissing(UserError):
    """A read-only command was pointed at a home that does not exist; it is not created."""

    def __init__(self, home: str) -> None:
        super().__init__(
            f"{home} does not exist; run `calmirror connect` or `calmirror run` to set it up, or check --home"
        )
        self.home = home


class LocalServerError(LocalError):
    """The local Radicale server could not start or be reached."""


class BadItem(CalmirrorError):
    """A calendar object that cannot be used; `reason` is short and safe to log."""

    def __init__(self, href: str, reason: str) -> None:
        super().__init__(f"{href}: {reason}")
        self.href = href
        self.reason = reason
