"""One canonical spelling for every URL the client returns or compares.

Servers spell the same resource several ways (`/a%40b.ics`, `/a@b.ics`, relative or
absolute, the partition host with or without the answering host). The mirror keys its
item map on hrefs, so two spellings of one item would look like a deletion plus an
addition. The canonical form, applied to everything `ICloudClient` returns:

- absolute: `scheme://host[:port]/path`, scheme and host lower-cased, the port kept
  exactly as the server wrote it (iCloud's home set says `:443` explicitly);
- each path segment percent-decoded to bytes, then re-encoded leaving RFC 3986 `pchar`
  characters bare except `;` (letters, digits, ``-._~!$&'()*+,=:@``) and everything
  else as upper-case `%XX`: `%40` becomes `@`, a space `%20`, UTF-8 `é` `%C3%A9`, and an
  encoded slash inside a segment stays `%2F`. `;` stays encoded because Python's
  `urlparse`, and with it Radicale, cuts a bare `;...` off a path as "parameters": a
  multiget naming `/c/a;b.ics` is answered for `/c/a`;
- no query, no fragment; a collection keeps its trailing slash.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote_to_bytes, urljoin, urlsplit, urlunsplit

from calmirror.errors import RemoteError
from calmirror.hrefs import as_collection, last_segment, origin_of, path_of, same_resource

__all__ = [
    "as_collection",
    "canonical_path",
    "canonical_url",
    "last_segment",
    "origin_of",
    "path_of",
    "rebase",
    "resolve",
    "same_resource",
]

_PCHAR_SAFE = "!$&'()*+,=:@~"


def canonical_path(path: str) -> str:
    segments = path.split("/")
    return "/".join(quote(unquote_to_bytes(segment), safe=_PCHAR_SAFE) for segment in segments) or "/"


@functools.lru_cache(maxsize=1024)
def canonical_url(url: str) -> str:
    """The canonical form of an absolute http(s) URL (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RemoteError(
            f"{_show(url)}: not an http(s) CalDAV URL (a webcal:// subscription cannot be used)", url=_show(url)
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), host, canonical_path(parts.path or "/"), "", ""))


def resolve(base: str, href: str) -> str:
    """`href` (absolute URL, absolute path or relative) against `base`, canonical."""
    return canonical_url(urljoin(base, href.strip()))


def rebase(origin_url: str, href: str) -> str:
    """`href` placed on the host of `origin_url`: its path only is kept.

    Used for hrefs inside a calendar's REPORT answers, which must come out on the
    calendar's host however the server spelt them. An absolute path that is canonical
    already (iCloud's own hrefs are) is only put behind the host: at 100,000 events the
    cache below held a third of a calendar's hrefs, so each of the three rebases of every
    href per pass (listing, request, answer) parsed and re-quoted it.
    """
    stripped = href.strip()
    if _CANONICAL_PATH.fullmatch(stripped) and "/." not in stripped and "//" not in stripped:
        return _host_of(origin_url) + stripped
    return _rebase(origin_url, stripped)


#: An absolute path `canonical_path` leaves as it is (only bare `pchar`s, no `%`, no `;`);
#: with no dot segment and no empty one, joining it to a URL keeps it as it is too.
_CANONICAL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,=:@/]*")


@functools.lru_cache(maxsize=64)
def _host_of(origin_url: str) -> str:
    parts = urlsplit(canonical_url(origin_url))
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


@functools.lru_cache(maxsize=1 << 15)
def _rebase(origin_url: str, href: str) -> str:
    path = urlsplit(urljoin(origin_url, href)).path or "/"
    return _host_of(origin_url) + canonical_path(path)


def _show(url: str) -> str:
    parts = urlsplit(url)
    if parts.password or parts.username:
        host = parts.hostname or ""
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return url
