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

The conversations live in their own modules (`discovery`, `calendars`, `changes`,
`multiget`); this class holds what they share, the session and the home's host, and does
the single-item writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from calmirror.errors import BadRemoteData
from calmirror.model import CalendarRow
from calmirror.raw_text import from_bytes
from calmirror.remote import calendars, changes, discovery, hrefs, multiget
from calmirror.remote import xml as dav
from calmirror.remote.http import AUTH_HELP, Http, safe_url, where
from calmirror.remote.models import Account, FetchedItem, SyncChanges
from calmirror.remote.multistatus import first, multistatus

ICS = "text/calendar; charset=utf-8"


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
        refused_help: str = AUTH_HELP,
        generation: int | None = None,
    ) -> None:
        """`refused_help`: what a 401 tells the user, in the terms of this server (iCloud's
        app-specific password by default; see `calmirror.refused`). `generation`: the
        account's credentials generation `password` belongs to, carried by every 401."""
        self.server_url = hrefs.canonical_url(server_url)
        self._http = Http(
            apple_id, password, timeout=timeout, user_agent=user_agent, refused_help=refused_help, generation=generation
        )
        self._home_origin: str | None = None

    def __enter__(self) -> ICloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- discovery and collections -----------------------------------------------------

    def discover(self) -> Account:
        """Principal, then home (`remote.discovery`); usually 2 requests."""
        found = discovery.discover(self._http, self.server_url)
        self._home_origin = hrefs.origin_of(found.home_url)
        return found

    def addresses(self, principal_url: str) -> tuple[str, ...]:
        """The addresses the user is invited under (`remote.discovery.addresses`); one request."""
        return discovery.addresses(self._http, principal_url)

    def list_calendars(self, home_url: str) -> list[CalendarRow]:
        """One Depth-1 PROPFIND (`remote.calendars`)."""
        home = hrefs.as_collection(hrefs.canonical_url(home_url))
        listed = calendars.list_calendars(self._http, home)
        self._home_origin = hrefs.origin_of(home)
        return listed

    def get_ctag(self, calendar_url: str) -> str | None:
        """One Depth-0 PROPFIND. iCloud's ctag equals its sync token (ICLOUD.md #10)."""
        return calendars.get_ctag(self._http, _collection(calendar_url))

    # --- sync and fetch ----------------------------------------------------------------

    def sync(self, calendar_url: str, token: str | None) -> SyncChanges:
        """One sync-collection REPORT, or the ctag/ETag fallback (`remote.changes`)."""
        return changes.sync(self._http, _collection(calendar_url), token)

    def sync_by_ctag(self, calendar_url: str, token: str | None) -> SyncChanges:
        """One or two PROPFINDs (`remote.changes.sync_by_ctag`)."""
        return changes.sync_by_ctag(self._http, _collection(calendar_url), token)

    def fetch(
        self, calendar_url: str, hrefs_wanted: Sequence[str], batch: int = 100
    ) -> tuple[list[FetchedItem], list[str]]:
        """calendar-multiget in batches of `batch`: ceil(len/batch) REPORTs (`remote.multiget`).
        Returns the items and the hrefs the server answered 404 for."""
        return multiget.fetch(self._http, _collection(calendar_url), hrefs_wanted, batch)

    # --- single items ------------------------------------------------------------------

    def get(self, href: str) -> FetchedItem:
        """One GET (plus one PROPFIND if the server sent no ETag header)."""
        url = self._item_url(href)
        response = self._http.request("GET", url, headers={"Accept": "text/calendar"})
        etag = response.headers.get("ETag") or self._etag_of(url)
        declared = response.headers.get("Content-Type", "").lower().replace(" ", "")
        if "charset" not in declared or "charset=utf-8" in declared or 'charset="utf-8"' in declared:
            # RFC 5545's default (requests would guess Latin-1), every byte kept: one that is
            # not UTF-8 (an old client's Windows-1252) stays in the text as itself (`raw_text`)
            return FetchedItem(url, etag, from_bytes(response.content))
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
        status = multistatus(self._http, "PROPFIND", url, dav.propfind("d:getetag"), depth="0")
        etag = first(status, lambda r: r.text(dav.GETETAG))
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


def _collection(calendar_url: str) -> str:
    return hrefs.as_collection(hrefs.canonical_url(calendar_url))


def _if_match(etag: str) -> str:
    etag = etag.strip()
    if not etag or etag == "*":
        raise ValueError("an update or conditional delete needs the item's real ETag, never '*' (ICLOUD.md #23)")
    return etag if etag.startswith(('"', "W/")) else f'"{etag}"'
