"""One keep-alive HTTP session to the CalDAV server, and the one place where HTTP
failures become calmirror's typed errors.

Everything that can go wrong on the wire ends here as a `RemoteError` subclass whose
message names the method, the URL path and the status, and nothing else: the
Authorization header and the password never reach a message, a log line or a
traceback, because we never format a request or a `requests` exception verbatim.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from calmirror.errors import (
    AuthFailed,
    BadRemoteData,
    Conflict,
    Forbidden,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    RemoteError,
    TLSFailure,
    Unavailable,
    Unreachable,
    icloud_refused_help,
)

log = logging.getLogger("calmirror.remote")

AUTH_HELP = icloud_refused_help()

# Redirects are never followed implicitly: requests turns a 302 PROPFIND into a GET and, when
# we re-issue a request ourselves, the session would re-attach credentials to any host.
# Discovery follows same-origin redirects explicitly (see `ICloudClient.discover`).
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def where(method: str, url: str) -> str:
    """`PROPFIND p72-caldav.icloud.com:443/123/calendars/`: what a message may say about a
    request. The host is named because iCloud spreads an account over several (the front
    door and a partition host) and the one that failed is what a user needs to know."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{method} {host}{parts.path or '/'}"


def safe_url(url: str) -> str:
    """The URL without any user:password@ part, for the `url` field of errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    Never from the body: iCloud's 503 bodies are sometimes truncated HTML.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def error_for_status(
    method: str,
    url: str,
    response: requests.Response,
    *,
    body: bytes = b"",
    sync: bool = False,
    refused_help: str = AUTH_HELP,
) -> RemoteError:
    """The typed error for a status we did not expect; `sync` marks a sync-collection REPORT,
    whose 403 with `DAV:valid-sync-token` means "start again without a token". `refused_help`:
    what a 401 tells the user, in the terms of the server asked (iCloud's by default)."""
    status = response.status_code
    what = f"{where(method, url)}: {status}"
    clean = safe_url(url)
    if status == 401:
        return AuthFailed(f"{refused_help} ({what})", url=clean, status=status)
    if status in (429, 503):
        retry = parse_retry_after(response.headers.get("Retry-After"))
        return Unavailable(f"{what}{_reason(response)}", url=clean, status=status, retry_after=retry)
    if status >= 500:
        return Unavailable(f"{what}{_reason(response)}", url=clean, status=status)
    if sync and status in (400, 403, 409, 412) and b"valid-sync-token" in body:
        return InvalidSyncToken(f"{what}: the server no longer knows our sync token", url=clean, status=status)
    if status == 403:
        writing = method in ("PUT", "DELETE")
        hint = " (read-only calendar, or the UID exists in another calendar)" if writing else ""
        return Forbidden(f"{what} Forbidden{hint}", url=clean, status=status)
    if status == 404:
        return NotFound(f"{what} Not Found", url=clean, status=status)
    if status == 409:
        return Conflict(
            f"{what} Conflict (the calendar does not exist, or the item clashes with it)", url=clean, status=status
        )
    if status == 412:
        return PreconditionFailed(
            f"{what} Precondition Failed (the item changed since we read it, or already exists)",
            url=clean,
            status=status,
        )
    if status in REDIRECTS:
        target = urlsplit(response.headers.get("Location", "")).path or "?"
        return RemoteError(f"{what}: the server redirected to {target}; use that URL instead", url=clean, status=status)
    return RemoteError(f"{what}{_reason(response)}", url=clean, status=status)


def _reason(response: requests.Response) -> str:
    """The reason phrase with a leading space, only when short printable ASCII: it comes
    from the server and ends up on the user's terminal."""
    reason = (response.reason or "").strip()
    if not reason or len(reason) > 60 or not reason.isascii() or not reason.isprintable():
        return ""
    return " " + reason


def error_for_exception(method: str, url: str, exc: requests.RequestException) -> RemoteError:
    """The typed error for a request that never produced a complete answer."""
    what = where(method, url)
    clean = safe_url(url)
    if isinstance(exc, requests.exceptions.SSLError) or _caused_by(exc, ssl.SSLError):
        return TLSFailure(f"{what}: TLS failed (certificate not verified or handshake refused)", url=clean)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Unreachable(f"{what}: timed out connecting", url=clean)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Unreachable(f"{what}: timed out waiting for the answer", url=clean)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return Unreachable(f"{what}: the answer was cut off", url=clean)
    if isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema | requests.exceptions.InvalidSchema
    ):
        return RemoteError(f"{what}: not a usable http(s) URL", url=clean)
    return Unreachable(f"{what}: {_connection_reason(exc)}", url=clean)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(link, kind) for link in _chain(exc))


def _chain(exc: BaseException) -> Iterable[BaseException]:
    """The exception, its causes and contexts, and exceptions tucked into args (urllib3's
    MaxRetryError keeps the real one in `.reason`)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        link = todo.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        nested = [link.__cause__, link.__context__, getattr(link, "reason", None), *link.args]
        todo.extend(item for item in nested if isinstance(item, BaseException))


def _connection_reason(exc: BaseException) -> str:
    for link in _chain(exc):
        if isinstance(link, socket.gaierror) or type(link).__name__ == "NameResolutionError":
            return "the server name could not be resolved"
        if isinstance(link, ConnectionRefusedError):
            return "connection refused"
        if isinstance(link, ConnectionResetError | BrokenPipeError):
            return "connection reset by the server"
        if isinstance(link, OSError) and link.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
        if type(link).__name__ in ("RemoteDisconnected", "ProtocolError", "IncompleteRead"):
            return "the server closed the connection mid-answer"
    return "could not talk to the server"


class Http:
    """A `requests.Session` with Basic auth, keep-alive, fixed timeouts and no implicit
    redirects. Not thread-safe (neither is `requests.Session`): one client per thread."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float],
        user_agent: str,
        refused_help: str = AUTH_HELP,
        generation: int | None = None,
    ) -> None:
        """`generation`: the account's credentials generation `password` belongs to; every
        401 this session gets carries it (`AuthFailed.generation`)."""
        self.timeout = timeout
        self.refused_help = refused_help
        self.generation = generation
        self.session = requests.Session()
        self.session.auth = (username, password)
        self.session.trust_env = False  # no ~/.netrc credentials, no proxy surprises
        self.session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"})
        # No urllib3 retries: a retried PUT is not ours to decide, and counts must be exact.
        adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
        sync: bool = False,
    ) -> requests.Response:
        """Send one request; a status in `ok` returns with its body read in full, any other
        status raises the typed error. A 429/5xx body is never read: iCloud's are HTML,
        sometimes cut off, and reading a cut-off body would hide the status behind a
        connection error."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                data=data,
                headers=dict(headers or {}),
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            raise self._failed(method, url, exc, started) from None
        status = response.status_code
        if status not in set(ok):
            error_body = b"" if status == 429 or status >= 500 else _read_quietly(response)
            response.close()
            log.debug("%s -> %d in %.2f s", where(method, url), status, time.monotonic() - started)
            error = error_for_status(method, url, response, body=error_body, sync=sync, refused_help=self.refused_help)
            if isinstance(error, AuthFailed):
                error.generation = self.generation  # the password this request was sent with
            raise error
        try:
            size = len(response.content)
        except requests.RequestException as exc:
            response.close()
            if status == 207:  # a multistatus cut off mid-way is unusable data, not silence
                raise BadRemoteData(
                    f"{where(method, url)}: 207 answer cut off before its end", url=safe_url(url), status=status
                ) from None
            raise self._failed(method, url, exc, started) from None
        log.debug("%s -> %d in %.2f s (%d bytes)", where(method, url), status, time.monotonic() - started, size)
        return response

    @staticmethod
    def _failed(method: str, url: str, exc: requests.RequestException, started: float) -> RemoteError:
        error = error_for_exception(method, url, exc)
        log.debug("%s failed after %.2f s: %s", where(method, url), time.monotonic() - started, error)
        return error

    def close(self) -> None:
        self.session.close()


def require_xml(method: str, url: str, response: requests.Response) -> bytes:
    """The body of a 207, or BadRemoteData when there is none to parse."""
    if not response.content:
        raise BadRemoteData(
            f"{where(method, url)}: {response.status_code} with an empty body",
            url=safe_url(url),
            status=response.status_code,
        )
    return response.content


def _read_quietly(response: requests.Response, limit: int = 65536) -> bytes:
    """Up to `limit` bytes of an error body (a DAV precondition element), or nothing."""
    try:
        return response.raw.read(limit, decode_content=True) or b""
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        log.debug("error body unreadable: %s", type(exc).__name__)  # the status already says enough
        return b""
