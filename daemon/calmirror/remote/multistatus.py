"""A CalDAV request answered by a 207 multistatus, parsed: shared by every conversation in
`remote/` (discovery, calendar listing, sync, multiget, ETag look-ups), so each sends the
same headers and turns a non-XML answer into the same typed error."""

from __future__ import annotations

from collections.abc import Callable

from calmirror.remote import xml as dav
from calmirror.remote.http import Http, require_xml, safe_url, where

XML = "application/xml; charset=utf-8"


def xml_headers(depth: str) -> dict[str, str]:
    return {"Content-Type": XML, "Depth": depth}


def multistatus(http: Http, method: str, url: str, body: str, *, depth: str, sync: bool = False) -> dav.Multistatus:
    response = http.request(method, url, body=body, headers=xml_headers(depth), ok=(207,), sync=sync)
    return dav.parse_multistatus(require_xml(method, url, response), where=where(method, url), url=safe_url(url))


def first(status: dav.Multistatus, pick: Callable[[dav.DavResponse], str | None]) -> str | None:
    """The first non-empty value `pick` finds among the responses."""
    for response in status.responses:
        value = pick(response)
        if value:
            return value
    return None
