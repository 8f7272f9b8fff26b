"""CalDAV request bodies and a multistatus parser that refuses hostile XML.

Bodies are small fixed templates with every variable part escaped, so what goes on the
wire can be read here in full. The parser uses lxml with entity resolution, network
access and huge trees switched off, and then refuses any document that carried a
DOCTYPE at all: a CalDAV server has no reason to send one, and a document that does is
either broken or an attack (external entities, entity expansion).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict
from xml.sax.saxutils import escape

from lxml import etree

from calmirror.errors import BadRemoteData

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CS = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"

_PROLOG = '<?xml version="1.0" encoding="utf-8"?>\n'
_NAMESPACES = f'xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:cs="{CS}" xmlns:a="{APPLE}"'


def clark(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def text_of(element: etree._Element) -> str:
    """All text inside `element`. A parsed document only ever yields str here; the stubs
    also allow bytes, which the filter drops."""
    return "".join(part for part in element.itertext() if isinstance(part, str))


GETETAG = clark(DAV, "getetag")
RESOURCETYPE = clark(DAV, "resourcetype")
DISPLAYNAME = clark(DAV, "displayname")
PRIVILEGES = clark(DAV, "current-user-privilege-set")
SYNC_TOKEN = clark(DAV, "sync-token")
PRINCIPAL = clark(DAV, "current-user-principal")
HOME_SET = clark(CALDAV, "calendar-home-set")
ADDRESS_SET = clark(CALDAV, "calendar-user-address-set")
COMPONENTS = clark(CALDAV, "supported-calendar-component-set")
CALENDAR_DATA = clark(CALDAV, "calendar-data")
GETCTAG = clark(CS, "getctag")
COLOR = clark(APPLE, "calendar-color")


# --- request bodies ----------------------------------------------------------------------


def propfind(*props: str) -> str:
    """A PROPFIND naming its properties (`d:getetag`, `cs:getctag`): iCloud has no allprop."""
    names = "".join(f"<{prop}/>" for prop in props)
    return f"{_PROLOG}<d:propfind {_NAMESPACES}><d:prop>{names}</d:prop></d:propfind>"


CALENDAR_PROPS = propfind(
    "d:resourcetype",
    "d:displayname",
    "d:current-user-privilege-set",
    "c:supported-calendar-component-set",
    "a:calendar-color",
)


def sync_collection(token: str | None) -> str:
    """RFC 6578 sync-collection, level 1, ETags only: bodies come from a multiget."""
    token_xml = f"<d:sync-token>{escape(token)}</d:sync-token>" if token else "<d:sync-token/>"
    return (
        f"{_PROLOG}<d:sync-collection {_NAMESPACES}>{token_xml}<d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def calendar_multiget(paths: Iterable[str]) -> str:
    """RFC 4791 calendar-multiget for already percent-encoded absolute paths."""
    hrefs = "".join(f"<d:href>{escape(path)}</d:href>" for path in paths)
    return (
        f"{_PROLOG}<c:calendar-multiget {_NAMESPACES}><d:prop><d:getetag/><c:calendar-data/></d:prop>"
        f"{hrefs}</c:calendar-multiget>"
    )


# --- parsing -----------------------------------------------------------------------------


@dataclass
class DavResponse:
    """One `<d:response>`: its href as sent, the response-level status if any, and the
    properties the server answered with a 2xx propstat."""

    href: str
    status: int | None
    props: dict[str, etree._Element] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        element = self.props.get(name)
        if element is None:
            return None
        value = text_of(element).strip()
        return value or None

    def child_href(self, name: str) -> str | None:
        """The text of the `<d:href>` inside property `name` (principal, home set)."""
        element = self.props.get(name)
        if element is None:
            return None
        href = element.find(clark(DAV, "href"))
        if href is None or not (href.text or "").strip():
            return None
        return (href.text or "").strip()

    def child_hrefs(self, name: str) -> list[str]:
        """Every `<d:href>` inside property `name`, in order (calendar-user-address-set)."""
        element = self.props.get(name)
        if element is None:
            return []
        texts = ((href.text or "").strip() for href in element.iter(clark(DAV, "href")))
        return [text for text in texts if text]


@dataclass
class Multistatus:
    responses: list[DavResponse]
    sync_token: str | None


# What every answer from a server is parsed with: no entities, no network, no DTD, no huge
# trees; the tree parser and the streaming one take the same options.
class _Options(TypedDict):
    resolve_entities: bool
    no_network: bool
    huge_tree: bool
    load_dtd: bool
    dtd_validation: bool
    remove_comments: bool
    remove_pis: bool


_SAFE = _Options(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(**_SAFE)


def parse_multistatus(body: bytes, *, where: str = "", url: str = "") -> Multistatus:
    """Parse a 207 body. Truncated, non-XML, non-multistatus or DOCTYPE-carrying bodies
    raise BadRemoteData; `where` ("REPORT /path") goes into the message."""
    prefix = f"{where}: " if where else ""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise BadRemoteData(f"{prefix}unreadable XML in the answer ({_short(exc)})", url=url, status=207) from None
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise BadRemoteData(f"{prefix}the answer declares a DOCTYPE/entities; refused", url=url, status=207)
    if root.tag != clark(DAV, "multistatus"):
        raise BadRemoteData(f"{prefix}the answer is not a DAV multistatus", url=url, status=207)
    responses = [_response(element, prefix, url) for element in root.iterchildren(clark(DAV, "response"))]
    token_element = root.find(SYNC_TOKEN)
    token = (token_element.text or "").strip() if token_element is not None else ""
    return Multistatus(responses, token or None)


@dataclass(frozen=True)
class Listed:
    """One `<d:response>` of a sync listing: href as sent, response-level status, ETag."""

    href: str
    status: int | None
    etag: str | None


def parse_listing(body: bytes, *, where: str = "", url: str = "") -> tuple[list[Listed], str | None]:
    """A sync-collection answer read as a stream, each response dropped once read: a
    100,000-item listing as a whole tree cost over 100 MB. Same refusals as
    `parse_multistatus` (checked once the document is read, before anything is returned)."""
    prefix = f"{where}: " if where else ""
    listed: list[Listed] = []
    token: str | None = None
    response_tag = clark(DAV, "response")
    context = etree.iterparse(
        io.BytesIO(body),
        events=("end",),
        tag=(response_tag, SYNC_TOKEN),
        **_SAFE,
    )
    try:
        for _, element in context:
            if element.tag == SYNC_TOKEN:
                if element.getparent() is not None and element.getparent().tag == clark(DAV, "multistatus"):
                    token = (element.text or "").strip() or None
                continue
            one = _response(element, prefix, url)
            listed.append(Listed(one.href, one.status, one.text(GETETAG)))
            element.clear()
            while element.getprevious() is not None:  # what came before is read already
                del element.getparent()[0]
        root = context.root
    except etree.XMLSyntaxError as exc:
        raise BadRemoteData(f"{prefix}unreadable XML in the answer ({_short(exc)})", url=url, status=207) from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise BadRemoteData(f"{prefix}the answer declares a DOCTYPE/entities; refused", url=url, status=207)
    if root.tag != clark(DAV, "multistatus"):
        raise BadRemoteData(f"{prefix}the answer is not a DAV multistatus", url=url, status=207)
    return listed, token


def _response(element: etree._Element, prefix: str, url: str) -> DavResponse:
    href_element = element.find(clark(DAV, "href"))
    href = (href_element.text or "").strip() if href_element is not None else ""
    if not href:
        raise BadRemoteData(f"{prefix}a response without an href", url=url, status=207)
    result = DavResponse(href, _status(element.find(clark(DAV, "status"))))
    for propstat in element.iterchildren(clark(DAV, "propstat")):
        status = _status(propstat.find(clark(DAV, "status")))
        prop = propstat.find(clark(DAV, "prop"))
        if prop is None or status is None or not 200 <= status < 300:
            continue
        for child in prop:
            if isinstance(child.tag, str):
                result.props[child.tag] = child
    return result


def _status(element: etree._Element | None) -> int | None:
    """The code from `HTTP/1.1 404 Not Found`; None when absent or unreadable."""
    if element is None or not element.text:
        return None
    parts = element.text.split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def has_resourcetype(response: DavResponse, namespace: str, name: str) -> bool:
    element = response.props.get(RESOURCETYPE)
    return element is not None and element.find(clark(namespace, name)) is not None


def component_names(response: DavResponse) -> tuple[str, ...] | None:
    """VEVENT/VTODO names from supported-calendar-component-set; None when not given."""
    element = response.props.get(COMPONENTS)
    if element is None:
        return None
    names = (comp.get("name", "").strip().upper() for comp in element.iterchildren(clark(CALDAV, "comp")))
    return tuple(name for name in names if name)


def privileges(response: DavResponse) -> set[str] | None:
    """Local names of the current user's privileges (`read`, `write`, …); None when not given."""
    element = response.props.get(PRIVILEGES)
    if element is None:
        return None
    found: set[str] = set()
    for privilege in element.iterchildren(clark(DAV, "privilege")):
        for child in privilege:
            if isinstance(child.tag, str):
                found.add(etree.QName(child).localname)
    return found


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
