"""The WSGI layer that makes Radicale answer like caldav.icloud.com.

It authenticates (Basic with the Apple ID and app-specific password), answers the
discovery chain itself, performs PUT/DELETE through the storage API, and passes the
rest to Radicale with REMOTE_USER set to the DSID, rewriting requests on the way in
(opaque tokens back to Radicale's) and answers on the way out (see `rewrite`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import radicale.app
from defusedxml import DefusedXmlException

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

from calmirror.emulator import discovery, objects, writes, xmlbits
from calmirror.emulator.messages import Reply, Request, empty_reply, xml_reply
from calmirror.emulator.reports import ReportPlan, prepare_report, stale_token_reply, sync_answer
from calmirror.emulator.rewrite import Rewriter, drop_responses, prepend_response
from calmirror.emulator.store import Store
from calmirror.emulator.tokens import TokenCodec
from calmirror.emulator.xmlbits import CALSERVER, DAV, clark

_log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
UNAUTHORIZED_HEADERS = [
    ("WWW-Authenticate", 'Basic realm="MMCalDav"'),
    ("WWW-Authenticate", 'X-MobileMe-AuthToken realm="MMCalDav"'),
    ("Content-Length", "0"),
]
_WELL_KNOWN = ("/.well-known/caldav", "/.well-known/caldav/")


class Credentials:
    """The account's Apple ID and current app-specific password (replaceable)."""

    def __init__(self, apple_id: str, password: str, addresses: tuple[str, ...] = ()) -> None:
        self.apple_id = apple_id
        self.addresses = addresses  # further addresses the user is invited under (aliases)
        self._password = password
        self._lock = threading.Lock()

    def set_password(self, password: str) -> None:
        with self._lock:
            self._password = password

    def check(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            login, sep, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        with self._lock:
            expected = self._password
        return (
            bool(sep)
            and login.casefold() == self.apple_id.casefold()
            and hmac.compare_digest(password.encode(), expected.encode())
        )


class ICloudLayer:
    """WSGI application for both the front and the partition listener."""

    def __init__(self, store: Store, credentials: Credentials, tokens: TokenCodec) -> None:
        self.store = store
        self.credentials = credentials
        self.tokens = tokens
        self.partition_url = ""  # set once the partition listener is bound
        self._radicale = radicale.app.Application(store.configuration)
        self._rewriter = Rewriter(store.dsid, tokens)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.credentials.check(str(environ.get("HTTP_AUTHORIZATION", ""))):
            _drain(environ)
            start_response("401 Unauthorized", list(UNAUTHORIZED_HEADERS))
            return [b""]
        request = _read_request(environ)
        try:
            reply = self._dispatch(request)
        except Exception:  # a bug here must not kill the connection without a status
            _log.exception("emulator failed on %s %s", request.method, request.path)
            reply = empty_reply(500)
        if reply.header("Content-Length") is None:
            reply.headers.append(("Content-Length", str(len(reply.body))))
        start_response(reply.status_line, reply.headers)
        return [reply.body]

    # --- routing ----------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Reply:
        path = request.path
        if path in ("", "/") or path in _WELL_KNOWN:
            return self._discovery(request, root=True)
        if path.rstrip("/") == self.store.principal_path.rstrip("/"):
            return self._discovery(request, root=False)
        if path.rstrip("/") == f"/{self.store.dsid}":
            return empty_reply(404)  # Radicale's principal, which iCloud does not have
        method = request.method
        if method == "PUT":
            return writes.put(self.store, request)
        if method == "DELETE":
            return writes.delete(self.store, request)
        if method in ("GET", "HEAD") and self._in_missing_calendar(path):
            return empty_reply(404)  # Radicale's rights would answer 403 for a path it has no calendar at
        try:
            if method == "PROPFIND":
                return self._propfind(request)
            if method == "REPORT":
                return self._report(request)
            if method == "PROPPATCH" and _sets_resourcetype(request.body):
                return empty_reply(403)
        except (ET.ParseError, DefusedXmlException):
            return empty_reply(400)
        reply = self._radicale_call(request)
        if method == "GET" and reply.status == 200:
            reply.body = objects.opened_bytes(reply.body)
        if method == "MOVE" and reply.status < 300:
            self.store.rescan()
        return reply

    def _in_missing_calendar(self, path: str) -> bool:
        """An item path whose calendar does not exist (never did, or deleted)."""
        target = writes.split_item_path(self.store, path)
        return target is not None and self.store.calendar(target[0]) is None

    def _discovery(self, request: Request, *, root: bool) -> Reply:
        if request.method == "OPTIONS":
            return empty_reply(200, ("DAV", "1, 2, access-control, calendar-access"), ("Allow", "OPTIONS, PROPFIND"))
        if request.method != "PROPFIND":
            return empty_reply(405 if root else 403, ("Allow", "OPTIONS, PROPFIND"))
        if not root and request.depth != "0":
            return empty_reply(400)
        try:
            kind, props = xmlbits.requested_props(xmlbits.parse(request.body))
        except (ET.ParseError, DefusedXmlException):
            return empty_reply(400)
        target = request.path or "/"
        if kind != "prop":
            return xml_reply(207, discovery.allprop_answer(target))
        if root:
            return xml_reply(207, discovery.root_answer(target, self.store.principal_path, props))
        home = self.partition_url.rstrip("/") + self.store.home_path
        return xml_reply(
            207,
            discovery.principal_answer(
                self.store.principal_path, home, self.credentials.apple_id, props, self.credentials.addresses
            ),
        )

    def _propfind(self, request: Request) -> Reply:
        root = xmlbits.parse(request.body)
        kind, props = xmlbits.requested_props(root)
        if kind != "prop":
            return xml_reply(207, discovery.allprop_answer(request.path))
        ctag = clark(CALSERVER, "getctag")
        sync_token = clark(DAV, "sync-token")
        cal_id = self._calendar_of(request.path)
        if cal_id is not None and request.depth == "0" and props and set(props) <= {ctag, sync_token}:
            return self._ctag_answer(cal_id, request.path, props)
        wants_ctag = ctag in props
        if root is not None and wants_ctag:
            request.body = _ctag_as_sync_token(root)
        reply = self._radicale_call(request, rewrite=False)
        if reply.status == 207:
            reply.body = self._rewriter.multistatus(
                reply.body, ctag_from_sync_token=wants_ctag, keep_sync_token=sync_token in props
            )
            if cal_id is not None and request.depth != "0":
                reply.body = drop_responses(reply.body, self.store.hidden_paths(cal_id))
        return reply

    def _ctag_answer(self, cal_id: str, path: str, props: list[str]) -> Reply:
        """ "Has this calendar changed?" polls, answered without Radicale re-reading every item."""
        token = self.tokens.encode(self.store.sync_token(cal_id))
        return xml_reply(207, xmlbits.multistatus(xmlbits.response(path, dict.fromkeys(props, token), [])))

    def _report(self, request: Request) -> Reply:
        plan = prepare_report(request, self.tokens)
        if plan.reply is not None:
            return plan.reply
        cal_id = self._calendar_of(request.path)
        if plan.fast_sync_token is not None and cal_id is not None:
            return self._fast_sync(cal_id, plan)
        reply = self._radicale_call(request)
        if plan.full_listing_on_stale_token and reply.status == 403 and b"valid-sync-token" in reply.body:
            plan = prepare_report(request, self.tokens, drop_token=True)
            reply = self._radicale_call(request)
        if reply.status == 207 and plan.add_collection_response is not None:
            reply.body = prepend_response(reply.body, plan.add_collection_response)
        if reply.status == 207 and plan.query and cal_id is not None:
            reply.body = drop_responses(reply.body, self.store.hidden_paths(cal_id))
        return reply

    def _calendar_of(self, path: str) -> str | None:
        """The calendar id when ``path`` is a calendar collection of the account."""
        home = self.store.home_path
        if not path.startswith(home):
            return None
        cal_id = path[len(home) :].rstrip("/")
        return cal_id if "/" not in cal_id and self.store.calendar(cal_id) is not None else None

    def _fast_sync(self, cal_id: str, plan: ReportPlan) -> Reply:
        assert plan.fast_sync_token is not None
        try:
            token, changes = self.store.changes_since(cal_id, plan.fast_sync_token)
        except KeyError:
            return empty_reply(404)  # deleted since `_calendar_of` saw it
        except ValueError:
            if not plan.full_listing_on_stale_token:
                return stale_token_reply()
            try:
                token, changes = self.store.changes_since(cal_id, "")
            except KeyError:
                return empty_reply(404)
        body = sync_answer(self.tokens.encode(token), self.store.calendar_path(cal_id), changes)
        return xml_reply(207, body)

    # --- Radicale ---------------------------------------------------------------------

    def _radicale_call(self, request: Request, *, rewrite: bool = True) -> Reply:
        environ = dict(request.environ)
        environ.pop("HTTP_AUTHORIZATION", None)
        environ.pop("HTTP_ACCEPT_ENCODING", None)  # Radicale would gzip, defeating the rewriter
        environ["REMOTE_USER"] = self.store.dsid
        environ["wsgi.input"] = io.BytesIO(request.body)
        environ["CONTENT_LENGTH"] = str(len(request.body))
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None) -> None:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = headers

        body = b"".join(self._radicale(environ, start_response))
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        reply = Reply(captured["status"], headers, body)
        etag = reply.header("ETag")
        if etag is not None:
            reply.set_header("ETag", self._rewriter.etag_header(etag))
        if rewrite and reply.status == 207:
            reply.body = self._rewriter.multistatus(reply.body)
        return reply


def _read_request(environ: dict[str, Any]) -> Request:
    raw_path = str(environ.get("PATH_INFO", "") or "/")
    try:
        path = raw_path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        path = raw_path
    return Request(str(environ.get("REQUEST_METHOD", "GET")).upper(), path, _drain(environ), environ)


def _drain(environ: dict[str, Any]) -> bytes:
    """Read the whole body so the connection stays usable and handlers get bytes."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    return data


def _ctag_as_sync_token(root: ET.Element) -> bytes:
    """Ask Radicale for the sync-token instead of its own getctag (a different hash).

    The rewriter then copies each sync-token into a getctag, which is how the two
    carry the same string as on iCloud, at the cost of computing only one of them.
    """
    prop = root.find(clark(DAV, "prop"))
    assert prop is not None
    for child in list(prop):
        if child.tag == clark(CALSERVER, "getctag"):
            prop.remove(child)
    if prop.find(clark(DAV, "sync-token")) is None:
        ET.SubElement(prop, clark(DAV, "sync-token"))
    body: bytes = ET.tostring(root, encoding="utf-8")
    return body


def _sets_resourcetype(body: bytes) -> bool:
    """A PROPPATCH setting DAV:resourcetype wrecks a Radicale calendar (RADICALE.md traps)."""
    root = xmlbits.parse(body)
    if root is None:
        return False
    return any(prop.tag == clark(DAV, "resourcetype") for prop in root.iter() if prop.tag == clark(DAV, "resourcetype"))
