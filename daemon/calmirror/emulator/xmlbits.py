"""Small XML helpers: safe request parsing and hand-built multistatus answers.

Answers the emulator synthesises itself (discovery, allprop, errors) are tiny, so
they are written as text; each element declares its own namespace, which keeps the
fragments independent of whatever prefixes the surrounding document uses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DefusedET

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CALSERVER = "http://calendarserver.org/ns/"
APPLE_ICAL = "http://apple.com/ns/ical/"
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n'
STATUS_TEXT = {200: "OK", 404: "Not Found"}


def clark(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def parse(body: bytes) -> ET.Element | None:
    """Parse a request body without resolving entities; None for an empty body.

    Raises ``ET.ParseError`` (or a defusedxml error) for bad or hostile XML.
    """
    if not body.strip():
        return None
    return DefusedET.fromstring(body, forbid_dtd=True)


def split_clark(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def element(tag: str, inner: str = "") -> str:
    """``<local xmlns="ns">inner</local>`` for a Clark-notation tag."""
    namespace, local = split_clark(tag)
    xmlns = f' xmlns="{escape(namespace)}"' if namespace else ""
    if not inner:
        return f"<{local}{xmlns}/>"
    return f"<{local}{xmlns}>{inner}</{local}>"


def href(text: str) -> str:
    return element(clark(DAV, "href"), escape(text))


def response(target: str, found: dict[str, str], missing: list[str]) -> str:
    """One DAV:response with a 200 propstat for ``found`` and a 404 one for ``missing``."""
    parts = [href(target)]
    for status, props in (
        (200, [element(tag, inner) for tag, inner in found.items()]),
        (404, [element(tag) for tag in missing]),
    ):
        if props:
            parts.append(
                "<propstat><prop>" + "".join(props) + "</prop>"
                f"<status>HTTP/1.1 {status} {STATUS_TEXT[status]}</status></propstat>"
            )
    return "<response>" + "".join(parts) + "</response>"


def multistatus(*responses: str) -> bytes:
    return XML_HEADER + ('<multistatus xmlns="DAV:">' + "".join(responses) + "</multistatus>").encode()


def error(tag: str, inner: str = "") -> bytes:
    """A DAV:error body naming one failed precondition, e.g. DAV:valid-sync-token."""
    return XML_HEADER + f'<error xmlns="DAV:">{element(tag, inner)}</error>'.encode()


def requested_props(root: ET.Element | None) -> tuple[str, list[str]]:
    """The kind of a PROPFIND body ("allprop", "propname" or "prop") and its prop tags."""
    if root is None:
        return "allprop", []
    for child in root:
        if child.tag == clark(DAV, "prop"):
            return "prop", [prop.tag for prop in child]
        if child.tag == clark(DAV, "propname"):
            return "propname", []
    return "allprop", []
