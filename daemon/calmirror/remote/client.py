"""`ICloudClient`: the only code that talks to iCloud (or any CalDAV server standing in).

Raw CalDAV over one `requests.Session` rather than python-caldav (3.6), because the
mirror's request budget (one sync REPORT + ceil(N/100) multigets) must be exact and every
failure must arrive typed. python-caldav's silent fallback from a failed sync to a full fetch
(a 503 included, ICLOUD.md #18) can be switched off, but its `sync()`, `load()` and
`save(no_overwrite=True)` still add requests of their own, its multiget is not batched, and
a redirect to another host drops the request body and surfaces as an authentication error.
Every method here issues a fixed, documented number of requests and never retries: retry
and back-off decisions belong to the caller, which knows the Retry-After it got.

Hrefs: every method accepts absolute URLs or absolute paths; paths are placed on the
host of the calendar (for `fetch`) or of the account's home as learnt by `discover` or
`list_calendars` (for get/create/update/delete), falling back to the server URL. Every
href returned is canonical (see `calmirror.remote.hrefs`).

Redirects are never followed with credentials to another host: requests is called with
redirects off, and discovery follows only same-host redirects itself (ICLOUD.md #2:
iCloud's move to the partition host is an absolute home-set URL, not a redirect).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from calmirror.errors import (
    AuthFailed,
    BadRemoteData,
    InvalidSyncToken,
    RemoteError,
    Unavailable,
    Unreachable,
)
from calmirror.model import COMPONENT_KINDS, CalendarRow, component_kinds
from calmirror.remote import hrefs
from calmirror.remote import xml as dav
from calmirror.remote.http import REDIRECTS, Http, require_xml, safe_url, where
from calmirror.remote.models import Account, FetchedItem, SyncChanges

log = logging.getLogger("calmirror.remote")

XML = "application/xml; charset=utf-8"
ICS = "text/calendar; charset=utf-8"
WRITE_PRIVILEGES = frozenset({"write", "write-content", "all"})
NOT_CALENDARS = frozenset({"inbox", "outbox", "notification", "notifications"})
MAX_REDIRECTS = 3
#: The sync token calmirror keeps for a calendar on a server without sync-collection
#: (RFC 6578): the calendar's ctag when its ETags were last listed.
CTAG_TOKEN = "calmirror-ctag:"
#: How servers refuse a REPORT they do not implement (RFC 3253 §3.6 says 403 with
#: DAV:supported-report; others answer 400, 405 or 501).
UNSUPPORTED_REPORT = frozenset({400, 403, 405, 501})


class CrossHostRedirect(RemoteError):
    """Discovery was redirected to another host. Not followed: the Apple ID and password
    would go to a server the user never named. (Defined here: `calmirror.errors` is not
    ours to edit; it is a plain RemoteError to every caller.)"""


class ICloudClient:
    """One account's CalDAV conversation. Not thread-safe: one client per thread."""

    def __init__(
        self,
        server_url: str,
        apple_id: str,
        password: str,
        *,
        timeout: tuple[float, float] = (10.0, 60.0),
        user_agent: str = "calmirror/0.1",
    ) -> None:
        self.server_url = hrefs.canonical_url(server_url)
        self._http = Http(apple_id, password, timeout=timeout, user_agent=user_agent)
        self._home_origin: str | None = None

    def __enter__(self) -> ICloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- discovery ---------------------------------------------------------------------

    def discover(self) -> Account:
        """Principal, then home. Usually 2 requests; 3 when the server URL does not answer
        for the principal and /.well-known/caldav does (plus any same-host redirects)."""
        principal = self._find_principal()
        answered, status = self._propfind_following(principal, dav.propfind("c:calendar-home-set"))
        home_href = _first(status, lambda r: r.child_href(dav.HOME_SET))
        if home_href is None:
            raise BadRemoteData(
                f"{where('PROPFIND', principal)}: no calendar-home-set for the principal",
                url=safe_url(principal),
                status=207,
            )
        home = hrefs.as_collection(hrefs.resolve(answered, home_href))
        self._home_origin = hrefs.origin_of(home)
        return Account(principal_url=principal, home_url=home)

    def _find_principal(self) -> str:
        body = dav.propfind("d:current-user-principal")
        candidates = [self.server_url, hrefs.resolve(self.server_url, "/.well-known/caldav")]
        first: RemoteError | None = None
        for candidate in candidates:
            try:
                answered, status = self._propfind_following(candidate, body)
            except (AuthFailed, Unavailable, Unreachable, CrossHostRedirect):
                raise
            except RemoteError as exc:  # 404/405/400/403 or unreadable: try the next place
                first = first or exc
                continue
            principal = _first(status, lambda r: r.child_href(dav.PRINCIPAL))
            if principal is not None:
                return hrefs.resolve(answered, principal)
        if first is not None:  # the answer for the URL the user gave says most
            raise first
        raise BadRemoteData(
            f"PROPFIND {hrefs.path_of(self.server_url)}: the server names no "
            "current-user-principal; is this a CalDAV server URL?",
            url=self.server_url,
        )

    def _propfind_following(self, url: str, body: str) -> tuple[str, dav.Multistatus]:
        """Depth-0 PROPFIND that follows same-host redirects (the method kept); returns the
        URL that answered, against which relative hrefs in the answer resolve."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._http.request("PROPFIND", url, body=body, headers=_xml_headers("0"), ok=(207, *REDIRECTS))
            if response.status_code not in REDIRECTS:
                return url, dav.parse_multistatus(
                    require_xml("PROPFIND", url, response), where=where("PROPFIND", url), url=safe_url(url)
                )
            target = hrefs.resolve(url, response.headers.get("Location", ""))
            if not _same_host(url, target):
                raise CrossHostRedirect(
                    f"{where('PROPFIND', url)}: {response.status_code} redirect to another host "
                    f"({urlsplit(target).hostname}); calmirror does not send the Apple ID there: use that "
                    "server URL instead",
                    url=safe_url(url),
                    status=response.status_code,
                )
            url = target
        raise RemoteError(f"{where('PROPFIND', url)}: too many redirects", url=safe_url(url))

    # --- collections -------------------------------------------------------------------

    def list_calendars(self, home_url: str) -> list[CalendarRow]:
        """One Depth-1 PROPFIND with explicit properties (iCloud has no allprop)."""
        home = hrefs.as_collection(hrefs.canonical_url(home_url))
        status = self._multistatus("PROPFIND", home, dav.CALENDAR_PROPS, depth="1")
        self._home_origin = hrefs.origin_of(home)
        calendars = []
        for response in status.responses:
            url = hrefs.as_collection(hrefs.rebase(home, response.href))
            if hrefs.same_resource(url, home) or not dav.has_resourcetype(response, dav.CALDAV, "calendar"):
                continue
            if hrefs.last_segment(url).lower() in NOT_CALENDARS or _is_scheduling(response):
                continue
            calendars.append(_calendar(url, response))
        return calendars

    def get_ctag(self, calendar_url: str) -> str | None:
        """One Depth-0 PROPFIND. iCloud's ctag equals its sync token (ICLOUD.md #10)."""
        url = hrefs.as_collection(hrefs.canonical_url(calendar_url))
        status = self._multistatus("PROPFIND", url, dav.propfind("cs:getctag"), depth="0")
        return _first(status, lambda r: r.text(dav.GETCTAG))

    # --- sync and fetch ----------------------------------------------------------------

    def sync(self, calendar_url: str, token: str | None) -> SyncChanges:
        """One sync-collection REPORT (level 1, ETags only); on a server without it, the
        ctag/ETag fallback (`sync_by_ctag`), chosen when a token-less sync-collection is
        refused and kept from then on through the token.

        `full` is True only for a token-less sync that the server did not truncate: a
        server that answers a stale token with a complete listing instead of 403
        (ICLOUD.md #11) cannot be told from a large change set, so that case is reported
        as incremental and deletions it implies are missed until the next full resync.
        A truncated answer (507 on the collection, RFC 6578 §3.6) sets `truncated`; its
        token continues where the answer stopped.
        """
        url = hrefs.as_collection(hrefs.canonical_url(calendar_url))
        if token is not None and token.startswith(CTAG_TOKEN):
            return self.sync_by_ctag(url, token)
        try:
            response = self._http.request(
                "REPORT", url, body=dav.sync_collection(token), headers=_xml_headers("0"), ok=(207,), sync=True
            )
        except RemoteError as exc:
            if token is not None or exc.status not in UNSUPPORTED_REPORT or isinstance(exc, InvalidSyncToken):
                raise
            log.info(
                "%s: no sync-collection (%s); following it by its ctag and ETags", where("REPORT", url), exc.status
            )
            return self.sync_by_ctag(url, None)
        listed, sync_token = dav.parse_listing(
            require_xml("REPORT", url, response), where=where("REPORT", url), url=safe_url(url)
        )
        del response  # the body: tens of MB at 100,000 items
        if sync_token is None:
            raise BadRemoteData(
                f"{where('REPORT', url)}: sync answer without a sync-token", url=safe_url(url), status=207
            )
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

    def sync_by_ctag(self, calendar_url: str, token: str | None) -> SyncChanges:
        """For a server without sync-collection: one Depth-0 PROPFIND of the ctag; when it
        equals the one in `token`, nothing changed (one request). Otherwise one Depth-1
        PROPFIND lists every item's ETag, answered as a full listing: the mirror fetches only
        the items whose ETag differs and deletes those no longer listed. A server without a
        ctag is listed every time (two requests)."""
        url = hrefs.as_collection(hrefs.canonical_url(calendar_url))
        ctag = self.get_ctag(url)
        if ctag and token == CTAG_TOKEN + ctag:
            return SyncChanges(token=token, changed={}, deleted=[], full=False, truncated=False)
        status = self._multistatus("PROPFIND", url, dav.propfind("d:resourcetype", "d:getetag"), depth="1")
        changed: dict[str, str] = {}
        for response in status.responses:
            href = hrefs.rebase(url, response.href)
            if hrefs.same_resource(href, url) or href.endswith("/"):
                continue
            if response.status is None or 200 <= response.status < 300:
                changed[href] = response.text(dav.GETETAG) or ""
        return SyncChanges(token=CTAG_TOKEN + (ctag or ""), changed=changed, deleted=[], full=True, truncated=False)

    def fetch(
        self,
        calendar_url: str,
        hrefs_wanted: Sequence[str],
        batch: int = 100,
    ) -> tuple[list[FetchedItem], list[str]]:
        """calendar-multiget in batches of `batch`: ceil(len/batch) REPORTs.

        Returns the items and the hrefs the server answered 404 for. An href the server
        does not mention at all is a protocol violation and raises BadRemoteData rather
        than being reported missing: "missing" deletes the mirror's copy.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        url = hrefs.as_collection(hrefs.canonical_url(calendar_url))
        wanted = list(dict.fromkeys(hrefs.rebase(url, href) for href in hrefs_wanted))
        items: list[FetchedItem] = []
        missing: list[str] = []
        for start in range(0, len(wanted), batch):
            chunk = wanted[start : start + batch]
            got, gone = self._multiget(url, chunk)
            items.extend(got)
            missing.extend(gone)
        return items, missing

    def _multiget(self, url: str, chunk: list[str]) -> tuple[list[FetchedItem], list[str]]:
        body = dav.calendar_multiget(hrefs.path_of(href) for href in chunk)
        status = self._multistatus("REPORT", url, body, depth="1")
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

    # --- single items ------------------------------------------------------------------

    def get(self, href: str) -> FetchedItem:
        """One GET (plus one PROPFIND if the server sent no ETag header)."""
        url = self._item_url(href)
        response = self._http.request("GET", url, headers={"Accept": "text/calendar"})
        etag = response.headers.get("ETag") or self._etag_of(url)
        if "charset" not in response.headers.get("Content-Type", "").lower():
            response.encoding = "utf-8"  # RFC 5545's default; requests would guess Latin-1
        return FetchedItem(url, etag, response.text)

    def create(self, href: str, body: str) -> str:
        """PUT with If-None-Match: * (a create never overwrites); 412 if something is there."""
        url = self._item_url(href)
        return self._put(url, body, {"If-None-Match": "*"})

    def update(self, href: str, body: str, etag: str) -> str:
        """PUT with If-Match on the real ETag; never `*`, which iCloud treats backwards (#23)."""
        url = self._item_url(href)
        return self._put(url, body, {"If-Match": _if_match(etag)})

    def delete(self, href: str, etag: str | None) -> None:
        """DELETE, conditional on `etag` when given; 404 raises NotFound, 412 PreconditionFailed."""
        url = self._item_url(href)
        headers = {"If-Match": _if_match(etag)} if etag is not None else {}
        self._http.request("DELETE", url, headers=headers, ok=(200, 202, 204))

    def _put(self, url: str, body: str, condition: dict[str, str]) -> str:
        response = self._http.request(
            "PUT", url, body=body, headers={"Content-Type": ICS, **condition}, ok=(200, 201, 204)
        )
        return response.headers.get("ETag") or self._etag_of(url)

    def _etag_of(self, url: str) -> str:
        """The ETag by Depth-0 PROPFIND, for servers that leave the header out."""
        status = self._multistatus("PROPFIND", url, dav.propfind("d:getetag"), depth="0")
        etag = _first(status, lambda r: r.text(dav.GETETAG))
        if etag is None:
            raise BadRemoteData(
                f"{where('PROPFIND', url)}: the server gave no ETag for the item", url=safe_url(url), status=207
            )
        return etag

    def _item_url(self, href: str) -> str:
        if not href.startswith("/") and "://" not in href:
            raise ValueError(f"{href!r}: give an absolute URL or an absolute path")
        url = hrefs.resolve(self._home_origin or self.server_url, href)
        if url.endswith("/"):
            raise ValueError(f"{hrefs.path_of(url)} is a collection, not an item")
        return url

    # --- plumbing ----------------------------------------------------------------------

    def _multistatus(self, method: str, url: str, body: str, *, depth: str, sync: bool = False) -> dav.Multistatus:
        response = self._http.request(method, url, body=body, headers=_xml_headers(depth), ok=(207,), sync=sync)
        return dav.parse_multistatus(require_xml(method, url, response), where=where(method, url), url=safe_url(url))


def _xml_headers(depth: str) -> dict[str, str]:
    return {"Content-Type": XML, "Depth": depth}


def _first(status: dav.Multistatus, pick: Callable[[dav.DavResponse], str | None]) -> str | None:
    for response in status.responses:
        value = pick(response)
        if value:
            return value
    return None


def _same_host(one: str, other: str) -> bool:
    a, b = urlsplit(one), urlsplit(other)
    if a.hostname != b.hostname:
        return False
    return (a.scheme, a.port) == (b.scheme, b.port) or b.scheme == "https"


def _if_match(etag: str) -> str:
    etag = etag.strip()
    if not etag or etag == "*":
        raise ValueError("an update or conditional delete needs the item's real ETag, never '*' (ICLOUD.md #23)")
    return etag if etag.startswith(('"', "W/")) else f'"{etag}"'


def _is_scheduling(response: dav.DavResponse) -> bool:
    kinds = ("schedule-inbox", "schedule-outbox")
    return any(dav.has_resourcetype(response, dav.CALDAV, kind) for kind in kinds)


def _raw_text(response: dav.DavResponse) -> str:
    """calendar-data as iCalendar text. XML parsing turns the CRLFs iCloud sends into LF
    (XML 1.0 §2.11); put them back so a fetched body reads like the same item's GET."""
    element = response.props[dav.CALENDAR_DATA]
    text = dav.text_of(element)
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _calendar(url: str, response: dav.DavResponse) -> CalendarRow:
    calendar_id = hrefs.last_segment(url)
    privileges = dav.privileges(response)
    components = dav.component_names(response)
    return CalendarRow(
        id=calendar_id,
        url=url,
        name=response.text(dav.DISPLAYNAME) or calendar_id,
        color=response.text(dav.COLOR),
        components=COMPONENT_KINDS if components is None else component_kinds(components),
        writable=True if privileges is None else bool(privileges & WRITE_PRIVILEGES),
    )
