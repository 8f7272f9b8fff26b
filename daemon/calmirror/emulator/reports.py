"""REPORT requests: what the layer answers itself and what it changes before Radicale.

- free-busy-query: iCloud answers 400.
- sync-collection: the opaque token is mapped back to Radicale's; a token from before
  `invalidate_sync_tokens` (or garbage) gets 403 DAV:valid-sync-token, or in "full"
  mode is dropped so the client receives a full listing with a fresh token. Asking
  only for ETags (what iCloud clients do) is answered from the calendar's change log (`changelog`).
- calendar-query without a time-range: iCloud also lists the collection itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

from calmirror.emulator import xmlbits
from calmirror.emulator.messages import Reply, Request, empty_reply, xml_reply
from calmirror.emulator.tokens import TokenCodec, short_etag
from calmirror.emulator.xmlbits import CALDAV, DAV, clark

_ETAG_ONLY = {clark(DAV, "getetag")}


@dataclass
class ReportPlan:
    reply: Reply | None = None
    add_collection_response: bytes | None = None
    full_listing_on_stale_token: bool = False
    # Set when a sync-collection can be answered from the change log: Radicale's token
    # ("" for a first sync).
    fast_sync_token: str | None = None
    # A calendar-query: a listing, which misses items written within the listing lag.
    query: bool = False


def stale_token_reply() -> Reply:
    return xml_reply(403, xmlbits.error(clark(DAV, "valid-sync-token")))


def prepare_report(request: Request, tokens: TokenCodec, *, drop_token: bool = False) -> ReportPlan:
    """Decide how to handle a REPORT; may rewrite ``request.body`` in place."""
    root = xmlbits.parse(request.body)
    if root is None:
        return ReportPlan(reply=empty_reply(400))
    if root.tag == clark(CALDAV, "free-busy-query"):
        return ReportPlan(reply=empty_reply(400))
    if root.tag == clark(DAV, "sync-collection"):
        if not tokens.sync_collection:  # RFC 3253 §3.6: a report the resource does not support
            return ReportPlan(reply=xml_reply(403, xmlbits.error(clark(DAV, "supported-report"))))
        return _sync_collection(request, root, tokens, drop_token)
    if root.tag != clark(CALDAV, "calendar-query"):
        return ReportPlan()
    if request.path.endswith("/") and root.find(".//" + clark(CALDAV, "time-range")) is None:
        return ReportPlan(add_collection_response=_collection_response(request.path, root), query=True)
    return ReportPlan(query=True)


def _sync_collection(request: Request, root: ET.Element, tokens: TokenCodec, drop_token: bool) -> ReportPlan:
    element = root.find(clark(DAV, "sync-token"))
    text = (element.text or "").strip() if element is not None else ""
    full_mode = tokens.invalid_mode == "full"
    radicale_token = ""
    if element is not None and text:
        decoded = None if drop_token else tokens.decode(text)
        if decoded is None and not full_mode and not drop_token:
            return ReportPlan(reply=stale_token_reply())
        radicale_token = decoded or ""
        element.text = radicale_token
        request.body = ET.tostring(root, encoding="utf-8")
    prop = root.find(clark(DAV, "prop"))
    asked = {child.tag for child in prop} if prop is not None else set()
    fast = radicale_token if asked <= _ETAG_ONLY else None
    return ReportPlan(full_listing_on_stale_token=full_mode, fast_sync_token=fast)


def _collection_response(path: str, root: ET.Element) -> bytes:
    prop = root.find(clark(DAV, "prop"))
    asked = [child.tag for child in prop] if prop is not None else [clark(DAV, "getetag")]
    return xmlbits.response(path, {}, asked).encode()


def sync_answer(token: str, collection_path: str, changes: list[tuple[str, str | None]]) -> bytes:
    """The multistatus for a sync-collection that asked only for ETags.

    Same shape as Radicale's (DAV: default namespace, token first), with short ETags
    and the opaque token already in place.
    """
    base = quote(collection_path)
    parts = [
        b"<?xml version='1.0' encoding='utf-8'?>\n<multistatus xmlns=\"DAV:\"><sync-token>",
        token.encode(),
        b"</sync-token>",
    ]
    for name, etag in changes:
        href = (base + quote(name)).encode()
        if etag is None:
            parts.append(b"<response><href>" + href + b"</href><status>HTTP/1.1 404 Not Found</status></response>")
        else:
            parts.append(
                b"<response><href>"
                + href
                + b"</href><propstat><prop><getetag>"
                + short_etag(etag).encode()
                + b"</getetag></prop><status>HTTP/1.1 200 OK"
                b"</status></propstat></response>"
            )
    parts.append(b"</multistatus>")
    return b"".join(parts)
