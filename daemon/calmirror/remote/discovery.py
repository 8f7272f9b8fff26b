"""Finding an account's calendar home: its principal, then the principal's home set.

Redirects are never followed with credentials to another host: requests is called with
redirects off, and discovery follows only same-host redirects itself (ICLOUD.md #2:
iCloud's move to the partition host is an absolute home-set URL, not a redirect).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from calmirror.errors import AuthFailed, BadRemoteData, RemoteError, Unavailable, Unreachable
from calmirror.remote import hrefs
from calmirror.remote import xml as dav
from calmirror.remote.http import REDIRECTS, Http, require_xml, safe_url, where
from calmirror.remote.models import Account
from calmirror.remote.multistatus import first, xml_headers

MAX_REDIRECTS = 3


class CrossHostRedirect(RemoteError):
    """Discovery was redirected to another host. Not followed: the Apple ID and password
    would go to a server the user never named. (Defined here: `calmirror.errors` is not
    ours to edit; it is a plain RemoteError to every caller.)"""


def discover(http: Http, server_url: str) -> Account:
    """Principal, then its home and the addresses the user is invited under. Usually 2
    requests; 3 when the server URL does not answer for the principal and
    /.well-known/caldav does (plus any same-host redirects)."""
    principal = _find_principal(http, server_url)
    answered, status = _propfind_following(
        http, principal, dav.propfind("c:calendar-home-set", "c:calendar-user-address-set")
    )
    home_href = first(status, lambda r: r.child_href(dav.HOME_SET))
    if home_href is None:
        raise BadRemoteData(
            f"{where('PROPFIND', principal)}: no calendar-home-set for the principal",
            url=safe_url(principal),
            status=207,
        )
    addresses = next((found for r in status.responses if (found := r.child_hrefs(dav.ADDRESS_SET))), [])
    return Account(
        principal_url=principal,
        home_url=hrefs.as_collection(hrefs.resolve(answered, home_href)),
        addresses=tuple(dict.fromkeys(addresses)),
    )


def addresses(http: Http, principal_url: str) -> tuple[str, ...]:
    """The principal's calendar-user-address-set alone (one PROPFIND)."""
    _, status = _propfind_following(http, principal_url, dav.propfind("c:calendar-user-address-set"))
    found = next((got for r in status.responses if (got := r.child_hrefs(dav.ADDRESS_SET))), [])
    return tuple(dict.fromkeys(found))


def _find_principal(http: Http, server_url: str) -> str:
    body = dav.propfind("d:current-user-principal")
    candidates = [server_url, hrefs.resolve(server_url, "/.well-known/caldav")]
    first_error: RemoteError | None = None
    for candidate in candidates:
        try:
            answered, status = _propfind_following(http, candidate, body)
        except (AuthFailed, Unavailable, Unreachable, CrossHostRedirect):
            raise
        except RemoteError as exc:  # 404/405/400/403 or unreadable: try the next place
            first_error = first_error or exc
            continue
        principal = first(status, lambda r: r.child_href(dav.PRINCIPAL))
        if principal is not None:
            return hrefs.resolve(answered, principal)
    if first_error is not None:  # the answer for the URL the user gave says most
        raise first_error
    raise BadRemoteData(
        f"PROPFIND {hrefs.path_of(server_url)}: the server names no "
        "current-user-principal; is this a CalDAV server URL?",
        url=server_url,
    )


def _propfind_following(http: Http, url: str, body: str) -> tuple[str, dav.Multistatus]:
    """Depth-0 PROPFIND that follows same-host redirects (the method kept); returns the
    URL that answered, against which relative hrefs in the answer resolve."""
    for _ in range(MAX_REDIRECTS + 1):
        response = http.request("PROPFIND", url, body=body, headers=xml_headers("0"), ok=(207, *REDIRECTS))
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


def _same_host(one: str, other: str) -> bool:
    a, b = urlsplit(one), urlsplit(other)
    if a.hostname != b.hostname:
        return False
    return (a.scheme, a.port) == (b.scheme, b.port) or b.scheme == "https"
