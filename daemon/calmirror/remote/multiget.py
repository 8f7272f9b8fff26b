"""Fetching a calendar's items by href: calendar-multiget REPORTs in fixed-size batches.

An href the server leaves out of its answer is a protocol violation, not a deletion:
"missing" deletes the mirror's copy, so only an explicit 404 (for the response or its
calendar-data) counts as gone."""

from __future__ import annotations

from collections.abc import Sequence

from calmirror.errors import BadRemoteData
from calmirror.remote import hrefs
from calmirror.remote import xml as dav
from calmirror.remote.http import Http, safe_url, where
from calmirror.remote.models import FetchedItem
from calmirror.remote.multistatus import multistatus


def fetch(http: Http, url: str, hrefs_wanted: Sequence[str], batch: int = 100) -> tuple[list[FetchedItem], list[str]]:
    """calendar-multiget on the calendar at `url` (a collection URL) in batches of `batch`:
    ceil(len/batch) REPORTs. Returns the items and the hrefs the server answered 404 for."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    wanted = list(dict.fromkeys(hrefs.rebase(url, href) for href in hrefs_wanted))
    items: list[FetchedItem] = []
    missing: list[str] = []
    for start in range(0, len(wanted), batch):
        got, gone = _multiget(http, url, wanted[start : start + batch])
        items.extend(got)
        missing.extend(gone)
    return items, missing


def _multiget(http: Http, url: str, chunk: list[str]) -> tuple[list[FetchedItem], list[str]]:
    body = dav.calendar_multiget(hrefs.path_of(href) for href in chunk)
    status = multistatus(http, "REPORT", url, body, depth="1")
    answered: dict[str, FetchedItem | None] = {}
    for response in status.responses:
        href = hrefs.rebase(url, response.href)
        if hrefs.same_resource(href, url):
            continue
        # An empty calendar-data is an item with broken content, not a vanished one: only a
        # missing property (404 for the response or the property) means "gone".
        if response.status not in (None, 200) or dav.CALENDAR_DATA not in response.props:
            answered.setdefault(href, None)
        else:
            answered[href] = FetchedItem(href, response.text(dav.GETETAG) or "", _raw_text(response))
    unanswered = [href for href in chunk if href not in answered]
    if unanswered:
        raise BadRemoteData(
            f"{where('REPORT', url)}: the multiget answer left out {len(unanswered)} of "
            f"{len(chunk)} hrefs (first: {hrefs.path_of(unanswered[0])})",
            url=safe_url(url),
            status=207,
        )
    items = [item for href in chunk if (item := answered[href]) is not None]
    return items, [href for href in chunk if answered[href] is None]


def _raw_text(response: dav.DavResponse) -> str:
    """calendar-data as iCalendar text. XML parsing turns the CRLFs iCloud sends into LF
    (XML 1.0 §2.11); put them back so a fetched body reads like the same item's GET."""
    element = response.props[dav.CALENDAR_DATA]
    text = dav.text_of(element)
    return text.replace("\r\n", "\n").replace("\n", "\r\n")
