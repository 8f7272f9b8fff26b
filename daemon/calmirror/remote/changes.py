"""What changed in a calendar since a sync token: one sync-collection REPORT (RFC 6578),
or, on a server without it, the calendar's ctag and its items' ETags.

The fallback is chosen when a token-less sync-collection is refused and is kept from then on
through the token itself (`CTAG_TOKEN` + the ctag), so the state needs no flag for it."""

from __future__ import annotations

import logging

from calmirror.errors import BadRemoteData, InvalidSyncToken, RemoteError
from calmirror.remote import hrefs
from calmirror.remote import xml as dav
from calmirror.remote.calendars import get_ctag
from calmirror.remote.http import Http, require_xml, safe_url, where
from calmirror.remote.models import SyncChanges
from calmirror.remote.multistatus import multistatus, xml_headers

log = logging.getLogger("calmirror.remote")

#: The sync token calmirror keeps for a calendar on a server without sync-collection
#: (RFC 6578): the calendar's ctag when its ETags were last listed.
CTAG_TOKEN = "calmirror-ctag:"
#: How servers refuse a REPORT they do not implement (RFC 3253 §3.6 says 403 with
#: DAV:supported-report; others answer 400, 405 or 501).
UNSUPPORTED_REPORT = frozenset({400, 403, 405, 501})


def sync(http: Http, url: str, token: str | None) -> SyncChanges:
    """One sync-collection REPORT (level 1, ETags only) on the calendar at `url` (a
    collection URL); on a server without it, `sync_by_ctag`.

    `full` is True only for a token-less sync that the server did not truncate: a
    server that answers a stale token with a complete listing instead of 403
    (ICLOUD.md #11) cannot be told from a large change set, so that case is reported
    as incremental and deletions it implies are missed until the next full resync.
    A truncated answer (507 on the collection, RFC 6578 §3.6) sets `truncated`; its
    token continues where the answer stopped.
    """
    if token is not None and token.startswith(CTAG_TOKEN):
        return sync_by_ctag(http, url, token)
    try:
        response = http.request(
            "REPORT", url, body=dav.sync_collection(token), headers=xml_headers("0"), ok=(207,), sync=True
        )
    except RemoteError as exc:
        if token is not None or exc.status not in UNSUPPORTED_REPORT or isinstance(exc, InvalidSyncToken):
            raise
        log.info("%s: no sync-collection (%s); following it by its ctag and ETags", where("REPORT", url), exc.status)
        return sync_by_ctag(http, url, None)
    listed, sync_token = dav.parse_listing(
        require_xml("REPORT", url, response), where=where("REPORT", url), url=safe_url(url)
    )
    del response  # the body: tens of MB at 100,000 items
    if sync_token is None:
        raise BadRemoteData(f"{where('REPORT', url)}: sync answer without a sync-token", url=safe_url(url), status=207)
    changed: dict[str, str] = {}
    deleted: list[str] = []
    truncated = False
    for one in listed:
        href = hrefs.rebase(url, one.href)
        if hrefs.same_resource(href, url):  # iCloud lists the collection itself (ICLOUD.md #13)
            truncated = truncated or one.status == 507
            continue
        if one.status == 404:
            deleted.append(href)
        elif one.status is None or 200 <= one.status < 300:
            if href.endswith("/"):  # a sub-collection is not an item
                continue
            changed[href] = one.etag or ""
    return SyncChanges(
        token=sync_token,
        changed=changed,
        deleted=deleted,
        full=token is None and not truncated,
        truncated=truncated,
    )


def sync_by_ctag(http: Http, url: str, token: str | None) -> SyncChanges:
    """For a server without sync-collection: one Depth-0 PROPFIND of the ctag; when it
    equals the one in `token`, nothing changed (one request). Otherwise one Depth-1
    PROPFIND lists every item's ETag, answered as a full listing: the mirror fetches only
    the items whose ETag differs and deletes those no longer listed. A server without a
    ctag is listed every time (two requests)."""
    ctag = get_ctag(http, url)
    if ctag and token == CTAG_TOKEN + ctag:
        return SyncChanges(token=token, changed={}, deleted=[], full=False, truncated=False)
    status = multistatus(http, "PROPFIND", url, dav.propfind("d:resourcetype", "d:getetag"), depth="1")
    changed: dict[str, str] = {}
    for response in status.responses:
        href = hrefs.rebase(url, response.href)
        if hrefs.same_resource(href, url) or href.endswith("/"):
            continue
        if response.status is None or 200 <= response.status < 300:
            changed[href] = response.text(dav.GETETAG) or ""
    return SyncChanges(token=CTAG_TOKEN + (ctag or ""), changed=changed, deleted=[], full=True, truncated=False)
