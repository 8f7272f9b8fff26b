"""What the local server answers itself instead of Radicale, and Radicale's answer held back.

A refusal is one line a person reads; where a client can act on it, it is also a `DAV:error`
body (a CalDAV precondition, or RFC 3744's `DAV:need-privileges` for a write into a read-only
calendar) that clients parse. Radicale's own answer is held whole (`RadicaleAnswer`) so that
its bare refusals can be replaced by such a line before the client sees them (`refusals`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from calmirror.local import davxml

StartResponse = Callable[..., Any]


class Refusal(Exception):
    """An answer the middleware gives instead of Radicale."""

    def __init__(
        self, status: HTTPStatus, text: str, condition: str | None = None, *, needs_write: str | None = None
    ) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.condition = condition  # a CalDAV precondition: the answer is a `DAV:error` body
        self.needs_write = needs_write  # a path the client may not write: `DAV:need-privileges`


@dataclass(frozen=True)
class RadicaleAnswer:
    """Radicale's whole answer, held back so it can be replaced before the client sees it."""

    status_line: str
    headers: list[tuple[str, str]]
    body: list[bytes]

    @property
    def code(self) -> int:
        return int(self.status_line.split(" ", 1)[0])

    @property
    def plain_refusal(self) -> HTTPStatus | None:
        """The status of a 4xx with Radicale's bare text; None for anything else, a `DAV:error`
        body (which clients parse) included."""
        content_type = next((v for k, v in self.headers if k.lower() == "content-type"), "")
        if not (400 <= self.code < 500 and self.code != 401 and content_type.startswith("text/plain")):
            return None
        try:
            return HTTPStatus(self.code)
        except ValueError:
            return None


def respond(
    start_response: StartResponse,
    status: HTTPStatus,
    text: str,
    *,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    if content_type.startswith("text/plain") and not text.endswith("\n"):
        text += "\n"
    payload = text.encode("utf-8")
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def respond_need_privileges(start_response: StartResponse, path: str, text: str) -> list[bytes]:
    """A write into a read-only calendar: RFC 3744 §7.1.1's `DAV:need-privileges` naming the
    resource and the privilege it lacks (`DAV:write`, which the collection never grants), with
    the line a person reads."""
    needs = (
        f"<D:need-privileges><D:resource><D:href>{escape(quote(path))}</D:href>"
        "<D:privilege><D:write/></D:privilege></D:resource></D:need-privileges>"
    )
    return respond_dav_error(start_response, HTTPStatus.FORBIDDEN, 'xmlns:D="DAV:"', needs, text)


def respond_condition(start_response: StartResponse, status: HTTPStatus, condition: str, text: str) -> list[bytes]:
    """A CalDAV precondition (RFC 4791 §1.3) clients can act on, with the line a person reads."""
    namespaces = f'xmlns:D="DAV:" xmlns:C="{davxml.CALDAV}"'
    return respond_dav_error(start_response, status, namespaces, f"<C:{condition}/>", text)


def respond_dav_error(
    start_response: StartResponse, status: HTTPStatus, namespaces: str, element: str, text: str
) -> list[bytes]:
    """A `DAV:error` body holding `element` and the one line a person reads."""
    line = escape(" ".join(text.split()))
    payload = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<D:error {namespaces}>{element}'
        f"<D:responsedescription>{line}</D:responsedescription></D:error>\n"
    )
    return respond(start_response, status, payload, content_type="application/xml; charset=utf-8")


def respond_refusal(start_response: StartResponse, refusal: Refusal) -> list[bytes]:
    if refusal.condition is not None:
        return respond_condition(start_response, refusal.status, refusal.condition, refusal.text)
    if refusal.needs_write is not None:
        return respond_need_privileges(start_response, refusal.needs_write, refusal.text)
    return respond(start_response, refusal.status, refusal.text)
